"""Helpers for the service's tests: secrets, free ports, the host Cassandra, a ``csm serve`` process."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.net import free_port
from harness.poll import until
from harness.service_secrets import master_key

REPO = Path(__file__).resolve().parents[1]


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
        master_key(),
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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The Cassandra the tests run against: cassandra/run's node for CSM_TEST_CASSANDRA_VERSION (default 5.0.9),
# at CSM_TEST_CASSANDRA_HOST (default 127.0.0.1 for 5.0, 127.0.0.41 for 4.1, so both can run at once).
CASSANDRA_VERSION = os.environ.get("CSM_TEST_CASSANDRA_VERSION", "5.0.9")
CASSANDRA = (
    os.environ.get("CSM_TEST_CASSANDRA_HOST") or ("127.0.0.41" if CASSANDRA_VERSION.startswith("4.1") else "127.0.0.1"),
    int(os.environ.get("CSM_TEST_CASSANDRA_PORT", "9042")),
)


def cassandra_run_env(**extra: str) -> dict[str, str]:
    """The environment that makes cassandra/run act on the tests' node."""
    return {
        **os.environ,
        "CASSANDRA_VERSION": CASSANDRA_VERSION,
        "CASSANDRA_HOST": CASSANDRA[0],
        "CASSANDRA_CQL_PORT": str(CASSANDRA[1]),
        **extra,
    }


def admin_cluster(**options: object) -> Any:
    """A driver Cluster logged in as the superuser on the tests' node (protocol version negotiated)."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    return Cluster(
        [CASSANDRA[0]], port=CASSANDRA[1], auth_provider=PlainTextAuthProvider("cassandra", "cassandra"), **options
    )


def cassandra_listening() -> bool:
    try:
        with socket.create_connection(CASSANDRA, timeout=1):
            return True
    except OSError:
        return False


def run_cassandra(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "cassandra" / "run"), command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=cassandra_run_env(**env),
    )


class Service:
    """A ``csm serve`` subprocess on a free loopback port; ``wrapper`` is a command that runs it."""

    def __init__(self, env: dict[str, str], log_path: Path, wrapper: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CSM_")}
        self.env = {**inherited, **env, "CSM_HOST": "127.0.0.1", "CSM_PORT": str(self.port)}
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "csm", "serve"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers share the group: a kill reaches them too
        )
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def wait_for(self, path: str, status: int, timeout: float) -> httpx.Response:
        def answers() -> httpx.Response:
            response = self.client.get(path)
            if response.status_code != status:
                raise AssertionError(f"{response.status_code} {response.text[:300]}")
            return response

        try:
            return until(
                f"{path} answering {status}", answers, timeout, 0.2, give_up=lambda: self.process.poll() is not None
            )
        except TimeoutError as error:
            exited = self.process.poll()
            raise AssertionError(
                f"{error}{f'; csm serve exited {exited}' if exited is not None else ''}\n{self.log()[-3000:]}"
            ) from None

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
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


def service_env(made: Secrets, keyspace: str, **extra: str) -> dict[str, str]:
    return {
        **made.env(),
        "CSM_CASSANDRA_USERNAME": "cassandra",
        "CSM_CASSANDRA_PASSWORD": "cassandra",
        "CSM_CASSANDRA_KEYSPACE": keyspace,
        "CSM_CASSANDRA_CONTACT_POINTS": CASSANDRA[0],
        "CSM_CASSANDRA_PORT": str(CASSANDRA[1]),
        "CSM_READINESS_INTERVAL": "0.5",
        **extra,
    }


def metric(text: str, sample: str) -> float:
    """The value of one sample (name with labels, as exposed) in a Prometheus text page; 0 if absent."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def with_hosts_file(hosts: Path) -> list[str]:
    """A wrapper command: runs its command in a mount namespace of its own where ``hosts`` is bind-mounted
    on /etc/hosts. Rewriting ``hosts`` in place changes what names resolve to for that process only;
    the machine's /etc/hosts is never touched. Needs root (unshare, mount)."""
    return ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]


class TcpRelay:
    """Relays TCP from ``listen`` to ``target``: an address in front of Cassandra, like a container's.
    ``close()`` kills the address: the listener and every relayed connection close at once."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self._target = target
        self._server = socket.create_server(listen)
        self._server.settimeout(0.2)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    @property
    def open_connections(self) -> int:
        """Client connections relayed now."""
        with self._lock:
            return len(self._open) // 2

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._open |= {client, upstream}
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), name="relay-pipe", daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        for s in sockets:
            with self._lock:
                self._open.discard(s)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closed = True
        self._server.close()
        with self._lock:
            sockets = list(self._open)
        self._drop(*sockets)
