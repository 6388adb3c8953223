"""Command-line entry point: ``csm serve|healthcheck|check-config|migrate``.

Exit codes: 0 success, 1 failure (unhealthy, Cassandra unreachable), 2 invalid configuration or usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

from csm.probe import TIMEOUT_S, answers_200, live_url, probe_file, served_url

if TYPE_CHECKING:
    from csm.config import Settings
    from csm.startup import Startup

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
# A wildcard listen address is reached on loopback.
LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # nosec B104 - maps wildcards to loopback, binds nothing


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (None: not given)."""
    return {
        "config_file": args.config,
        "secrets_dir": args.secrets_dir,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "log_level": getattr(args, "log_level", None),
    }


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings from every source, CLI flags first; prints the problems and returns None if invalid."""
    from csm.config import ConfigError, load_settings

    try:
        return load_settings(**_flags(args))
    except ConfigError as error:
        print(f"csm: {error}", file=sys.stderr)
        return None


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_OK)


def _serve(args: argparse.Namespace) -> int:
    from csm.startup import Startup

    startup = Startup()
    settings = _settings(args)
    if settings is None:
        return EXIT_CONFIG
    startup.phase("settings_s")
    from csm import workers
    from csm.logging import configure

    configure(settings.log_level)
    probe = probe_file(args.config, args.secrets_dir)
    # without a writable temporary directory the healthcheck reads the settings itself
    with contextlib.suppress(OSError), open(probe, "w") as file:
        file.write(live_url(LOOPBACK.get(settings.host, settings.host), settings.port))
    try:
        count = workers.count(settings.workers)
        if count > 1 and workers.serve(settings, _flags(args), count):
            return EXIT_OK
        _serve_here(settings, startup)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    return EXIT_OK


def _serve_here(settings: Settings, startup: Startup) -> None:
    """One process: the event loop and the application in this one."""
    import uvicorn

    from csm.app import create_app
    from csm.workers import server_options

    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal under the handler found at start:
    # this one turns that into exit status 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    app = create_app(settings, startup)
    startup.phase("imports_s")
    uvicorn.Server(uvicorn.Config(app, **server_options(settings))).run()


def _check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return EXIT_CONFIG
    print(json.dumps(settings.redacted(), indent=2, sort_keys=True))
    return EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return EXIT_CONFIG
    from csm.logging import configure
    from csm.store import Database

    configure(settings.log_level)
    database = Database(settings)
    try:
        applied = database.connect()
    except Exception as error:  # report any reason the migration could not run
        print(f"csm: migration failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        database.close()
    print(json.dumps({"keyspace": settings.cassandra_keyspace, "applied": applied}))
    return EXIT_OK


def _healthcheck(args: argparse.Namespace) -> int:
    url = live_url("127.0.0.1", args.port) if args.port is not None else served_url(args.config, args.secrets_dir)
    if url is None:  # no server started this way left its URL here: read the settings
        settings = _settings(args)
        if settings is None:
            return EXIT_FAILURE
        url = live_url(LOOPBACK.get(settings.host, settings.host), settings.port)
    return EXIT_OK if answers_200(url, args.timeout) else EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    sources = argparse.ArgumentParser(add_help=False)
    sources.add_argument("--config", metavar="FILE", help="YAML config file (else CSM_CONFIG_FILE)")
    sources.add_argument(
        "--secrets-dir", metavar="DIR", help="secret files directory (else CSM_SECRETS_DIR, /run/secrets)"
    )
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--host", help="listen address (else CSM_HOST)")
    server.add_argument("--port", type=int, help="listen port (else CSM_PORT)")
    server.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (else CSM_LOG_LEVEL)")

    parser = argparse.ArgumentParser(prog="csm", description="Cassandra Security Manager")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", parents=[sources, server], help="run the HTTP service").set_defaults(run=_serve)
    commands.add_parser(
        "check-config",
        parents=[sources, server],
        help="validate and print the effective configuration (secrets redacted)",
    ).set_defaults(run=_check_config)
    commands.add_parser(
        "migrate", parents=[sources], help="create or update the keyspace and tables, then exit"
    ).set_defaults(run=_migrate)
    health = commands.add_parser(
        "healthcheck", parents=[sources], help="exit 0 if /health/live answers 200 on this host, else 1"
    )
    health.add_argument("--port", type=int, help="the service's port (else from the configuration)")
    health.add_argument("--timeout", type=float, default=TIMEOUT_S, help=f"seconds (default {TIMEOUT_S:g})")
    health.set_defaults(run=_healthcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: int = args.run(args)
    return result
