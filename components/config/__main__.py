import sys

from components.config.generate import main

raise SystemExit(main(sys.argv[1:]))
