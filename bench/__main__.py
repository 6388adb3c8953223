from bench.benchmark import main

raise SystemExit(main())
