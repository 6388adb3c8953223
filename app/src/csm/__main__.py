from csm.cli import main

raise SystemExit(main())
