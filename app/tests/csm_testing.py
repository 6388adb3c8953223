"""Helpers for the service's tests: secrets, free ports, the host Cassandra, a ``csm serve`` process."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Secrets:
    directory: Path
    master_key: str
    admin_token: str
    reader_token: str
    writer_token: str

    def env(self) -> dict[str, str]:
        return {"CSM_SECRETS_DIR": str(self.directory)}


def make_secrets(directory: Path) -> Secrets:
    directory.mkdir(parents=True, exist_ok=True)
    made = Secrets(
        directory,
        base64.b64encode(secrets.token_bytes(32)).decode(),
        secrets.token_hex(32),
        secrets.token_hex(32),
        secrets.token_hex(32),
    )
    (directory / "csm_master_key").write_text(made.master_key + "\n")
    (directory / "csm_api_tokens").write_text(
        "# name:scopes:token\n"
        f"admin:read,write:{made.admin_token}\n"
        f"reader:read:{made.reader_token}\n"
        f"writer:write:{made.writer_token}\n"
    )
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


CASSANDRA = ("127.0.0.1", 9042)


def cassandra_listening() -> bool:
    try:
        with socket.create_connection(CASSANDRA, timeout=1):
            return True
    except OSError:
        return False


def run_cassandra(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "cassandra" / "run"), command], capture_output=True, text=True, timeout=600, check=False
    )


class Service:
    """A ``csm serve`` subprocess on a free loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CSM_")}
        self.env = {**inherited, **env, "CSM_HOST": "127.0.0.1", "CSM_PORT": str(self.port)}
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "csm", "serve"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def wait_for(self, path: str, status: int, timeout: float) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: httpx.Response | str = "no answer"
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"csm serve exited {self.process.returncode}:\n{self.log()}"
            try:
                last = self.client.get(path)
                if last.status_code == status:
                    return last
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.2)
        raise AssertionError(f"{path} did not answer {status} within {timeout} s; last: {last!r}\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def stop(self, timeout: float = 30) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def service_env(made: Secrets, keyspace: str, **extra: str) -> dict[str, str]:
    return {
        **made.env(),
        "CSM_CASSANDRA_USERNAME": "cassandra",
        "CSM_CASSANDRA_PASSWORD": "cassandra",
        "CSM_CASSANDRA_KEYSPACE": keyspace,
        "CSM_READINESS_INTERVAL": "0.5",
        **extra,
    }
