import sys

from csm.probe import healthcheck_from_probe_file

code = healthcheck_from_probe_file(sys.argv[1:])
if code is None:
    from csm.cli import main

    code = main()
raise SystemExit(code)
