"""Where ``csm serve`` leaves the URL of its liveness endpoint for ``csm healthcheck``.

The server writes the URL it resolved from every configuration source into a file named after what
it was started with (the ``CSM_*`` environment, ``--config`` and ``--secrets-dir``). A healthcheck
started the same way (Docker's HEALTHCHECK runs in the container's environment) reads it instead
of loading the settings a second time: a Python start plus a socket, not pydantic and the whole
configuration model. Without the file (another environment, or no writable temporary directory)
the healthcheck loads the settings as the server does. Only the standard library is imported here.
"""

from __future__ import annotations

import hashlib
import os
import socket

TIMEOUT_S = 2.0


def probe_file(config: str | None, secrets_dir: str | None) -> str:
    started_with = sorted((k, v) for k, v in os.environ.items() if k.startswith("CSM_"))
    key = repr((started_with, config, secrets_dir)).encode()
    # $TMPDIR or /tmp, never tempfile.gettempdir(): that one writes a test file to choose a directory
    name = f"csm-{hashlib.blake2b(key, digest_size=8).hexdigest()}.live"
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), name)  # nosec B108 - holds a loopback URL, no secret


def healthcheck_from_probe_file(argv: list[str]) -> int | None:
    """``csm healthcheck`` as the image's HEALTHCHECK runs it (no flags): the server's probe file and one
    GET, without the CLI (argparse, typing, json and pathlib cost more CPU than the probe itself). None
    when it cannot answer that way (flags given, or no file): the CLI then does it in full."""
    url = served_url(None, None) if argv == ["healthcheck"] else None
    return None if url is None else 0 if answers_200(url, TIMEOUT_S) else 1


def served_url(config: str | None, secrets_dir: str | None) -> str | None:
    """The live URL a server started with the same sources left, or None (no such server here, or it
    could not write the file)."""
    try:
        with open(probe_file(config, secrets_dir)) as file:
            return file.read()
    except OSError:
        return None


def live_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/health/live"


def answers_200(url: str, timeout: float) -> bool:
    """Whether a GET of ``url`` (http://host:port/path) answers 200."""
    address, _, path = url.removeprefix("http://").partition("/")
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as connection:
            connection.sendall(f"GET /{path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
            status_line = connection.makefile("rb").readline(256)
    except (OSError, ValueError):
        return False
    return status_line.split(b" ", 2)[1:2] == [b"200"]
