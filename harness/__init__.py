"""What the tests, ``reliability/`` and ``bench/`` share: running commands, reading env files, free
ports, polling with a deadline (tenacity), and the fixtures' helpers (Pulumi mocks, the local
Kubernetes cluster, the service under test, the image's containers).

Imported as a package (pytest runs with ``--import-mode=importlib`` and the project root on
``pythonpath``), never by bare module name."""
