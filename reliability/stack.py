"""The reliability suite's own Compose project on the local engine, and docker helpers.

The project (``csmrel``) is the product's local stack, deploy/local/compose.yaml unchanged, plus
reliability/compose.yaml (CSM and Cassandra's CQL port on loopback ports picked once and kept).
It uses the images the harness built (.local/image.env, .local/engine.env) and secrets of its own
in .local/reliability/secrets, so faults never touch the user's stack on port 8000.
Fault cases recreate its ``csm`` service with extra Compose files or settings, and restore it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_bytes, token_hex, token_urlsafe

import httpx

from harness.envfile import read_env
from harness.net import free_port
from harness.poll import wait_for
from harness.proc import run
from reliability.load import Target

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "csmrel"
COMPOSE_FILES = (ROOT / "deploy" / "local" / "compose.yaml", ROOT / "reliability" / "compose.yaml")
FAULTS = ROOT / "reliability" / "faults"
STATE = ROOT / ".local" / "reliability"
SECRETS = STATE / "secrets"
IMAGE_ENV = ROOT / ".local" / "image.env"
ENGINE_ENV = ROOT / ".local" / "engine.env"
HARNESS = ROOT / "localengine" / "csm-local"
CSM_UID, CASSANDRA_UID = 65532, 999
UP_TIMEOUT = 420  # a cold Cassandra container on 2 busy cores


class Unavailable(RuntimeError):
    """The engine, an image or another prerequisite is missing (a skip outside CI, a failure under CI)."""


def engine_problem() -> str | None:
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker info failed: {error}"
    return None if result.returncode == 0 else f"docker info failed: {result.stderr.strip()[:300]}"


def inspect(container: str) -> dict:
    return json.loads(run("docker", "inspect", container).stdout)[0]


@dataclass
class Event:
    time: float  # seconds since the epoch
    action: str  # start, die, oom, kill, health_status: healthy ...
    attributes: dict[str, str]


class Events:
    """``docker events`` for some containers, collected in the background while a case runs."""

    def __init__(self, *filters: str, since: float | None = None) -> None:
        args = ["docker", "events", "--format", "{{json .}}"]
        if since is not None:
            args += ["--since", f"{since:.3f}"]
        for item in filters:
            args += ["--filter", item]
        self.events: list[Event] = []
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with contextlib.suppress(ValueError, KeyError):
                raw = json.loads(line)
                self.events.append(
                    Event(
                        raw["timeNano"] / 1e9,
                        raw.get("Action") or raw.get("status", ""),
                        raw.get("Actor", {}).get("Attributes", {}),
                    )
                )

    def of(self, action: str) -> list[Event]:
        return [e for e in list(self.events) if e.action == action]

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._thread.join(5)

    def __enter__(self) -> Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Poller:
    """Polls a URL every ``interval`` seconds in the background, recording (time, status or None)."""

    def __init__(self, url: str, interval: float = 0.2, max_seconds: float = 900) -> None:
        self.url = url
        self.interval = interval
        self.max_seconds = max_seconds
        self.polls: list[tuple[float, int | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                at = time.time()
                try:
                    status: int | None = client.get(self.url).status_code
                except httpx.HTTPError:
                    status = None
                self.polls.append((at, status))
                self._stop.wait(self.interval)

    def first(self, status: int, after: float) -> float | None:
        return next((at for at, got in list(self.polls) if at >= after and got == status), None)

    def between(self, start: float, end: float) -> list[tuple[float, int | None]]:
        return [(at, got) for at, got in list(self.polls) if start <= at <= end]

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def memory_mib(container: str) -> float:
    """The container's memory use as ``docker stats`` reports it (cgroup v1 or v2)."""
    usage = run("docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container).stdout.split("/")[0].strip()
    units = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "B": 1 / 1024 / 1024}
    for unit, factor in units.items():
        if usage.endswith(unit):
            return float(usage[: -len(unit)]) * factor
    raise ValueError(f"cannot parse docker stats memory {usage!r}")


def logs(container: str, tail: int = 50) -> str:
    result = run("docker", "logs", "--tail", str(tail), container, check=False)
    return result.stdout + result.stderr


def _write_secret(path: Path, content: str, uid: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(content + "\n")
    tmp.chmod(0o600)
    os.chown(tmp, uid, uid)
    tmp.replace(path)


@dataclass
class Stack:
    """The ``csmrel`` Compose project."""

    csm_image: str
    cassandra_image: str
    secrets: Path = SECRETS
    project: str = PROJECT
    fresh_secrets: bool = False
    port: int = 0
    cql_port: int = 0
    _token: str = field(default="", repr=False)

    @classmethod
    def from_harness(cls) -> Stack:
        """The images the harness built; fails with what to run when one is missing."""
        problem = engine_problem()
        if problem:
            raise Unavailable(f"{problem} (run localengine/csm-local prereqs)")
        csm = read_env(IMAGE_ENV).get("CSM_IMAGE")
        cassandra = read_env(ENGINE_ENV).get("CSM_CASSANDRA_IMAGE")
        if not csm or not cassandra:
            raise Unavailable(
                f"no CSM_IMAGE in {IMAGE_ENV} or no CSM_CASSANDRA_IMAGE in {ENGINE_ENV} "
                "(run localengine/csm-local prereqs)"
            )
        for image in (csm, cassandra):
            if run("docker", "image", "inspect", image, check=False).returncode != 0:
                raise Unavailable(f"image {image} is not in the engine (run localengine/csm-local prereqs)")
        stack = cls(csm, cassandra)
        stack.ensure_secrets()
        stack.port = stack._running_port("csm", 8000) or free_port()
        stack.cql_port = stack._running_port("cassandra", 9042) or free_port()
        return stack

    def _running_port(self, service: str, port: int) -> int | None:
        """The loopback port a container of this project already publishes, so that reuse keeps it."""
        ids = run(
            "docker",
            "ps",
            "--quiet",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            check=False,
        ).stdout.split()
        for cid in ids:
            for line in run("docker", "port", cid, f"{port}/tcp", check=False).stdout.splitlines():
                if line.startswith("127.0.0.1:"):
                    return int(line.rsplit(":", 1)[1])
        return None

    # ------------------------------------------------------------ secrets

    def ensure_secrets(self) -> None:
        self.secrets.mkdir(parents=True, exist_ok=True)
        self.secrets.parent.chmod(0o700)
        self.secrets.chmod(0o700)
        generated = {
            "api_token": lambda: token_urlsafe(32),
            "master_key": lambda: base64.b64encode(token_bytes(32)).decode(),
            "cassandra_superuser_password": lambda: token_hex(24),
        }
        for name, make in generated.items():
            path = self.secrets / name
            if not path.is_file() or not path.read_text().strip():
                _write_secret(path, make(), 0)
                self.fresh_secrets = True
        token = (self.secrets / "api_token").read_text().strip()
        password = (self.secrets / "cassandra_superuser_password").read_text().strip()
        _write_secret(self.secrets / "csm_api_tokens", f"reliability:read,write:{token}", CSM_UID)
        _write_secret(self.secrets / "csm_master_key", (self.secrets / "master_key").read_text().strip(), CSM_UID)
        _write_secret(self.secrets / "csm_cassandra_password", password, CSM_UID)
        _write_secret(self.secrets / "cassandra_password", password, CASSANDRA_UID)
        self._token = token

    def fault_secrets(self, name: str) -> Path:
        """A copy of the secrets directory for a fault case to break (removed by ``drop_fault_secrets``)."""
        directory = STATE / f"secrets-{name}"
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(self.secrets, directory, symlinks=False)
        for path in directory.iterdir():
            source = (self.secrets / path.name).stat()
            os.chown(path, source.st_uid, source.st_gid)
        directory.chmod(0o700)
        return directory

    # ------------------------------------------------------------ compose

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            **os.environ,
            "CSM_IMAGE": self.csm_image,
            "CASSANDRA_IMAGE": self.cassandra_image,
            "CSM_SECRETS_DIR": str(self.secrets),
            "CSM_RELIABILITY_PORT": str(self.port),
            "CSM_RELIABILITY_CQL_PORT": str(self.cql_port),
            **overrides,
        }

    def compose(
        self, *args: str, files: tuple[Path, ...] = (), timeout: float = 300, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        command = ["docker", "compose", "--project-name", self.project]
        for path in (*COMPOSE_FILES, *files):
            command += ["-f", str(path)]
        return run(*command, *args, timeout=timeout, check=check, env=self.env(**env))

    def up(self) -> None:
        """Starts (or keeps) the project as the product defines it, and waits until CSM is ready."""
        if self.fresh_secrets and self.volume_exists():
            # The Cassandra superuser password is set on a volume's first start: new secrets need a new volume.
            self.compose("down", "--volumes", timeout=180)
        # `up` itself waits for Cassandra's health (csm depends on it); csm's readiness is polled here
        # rather than through --wait, whose verdict is the health check's (3 s timeout: too tight on
        # a loaded 2-core machine, where it reports a ready service unhealthy).
        self.compose("up", "--detach", timeout=UP_TIMEOUT)
        wait_for(f"{self.csm_url()}/health/ready", 200, timeout=180)

    def down(self) -> None:
        self.compose("down", timeout=180, check=False)

    def volume_exists(self) -> bool:
        return run("docker", "volume", "inspect", f"{self.project}_cassandra-data", check=False).returncode == 0

    def running(self) -> bool:
        result = run(
            "docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={self.project}", check=False
        )
        return bool(result.stdout.strip())

    def container(self, service: str) -> str:
        ids = self.compose("ps", "--all", "--quiet", service).stdout.split()
        if len(ids) != 1:
            raise RuntimeError(f"expected one {service} container in {self.project}, found {ids}")
        return ids[0]

    def csm_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def target(self) -> Target:
        return Target(self.csm_url(), self._token)

    def recreate_csm(self, *files: Path, wait: bool = True, **env: str) -> str:
        """Recreates the csm service (Cassandra untouched) from the product file + ``files`` + ``env``."""
        self.compose("up", "--detach", "--no-deps", "--force-recreate", "csm", files=files, timeout=240, **env)
        cid = self.container("csm")
        if wait:
            wait_for(f"{self.csm_url()}/health/ready", 200, timeout=180)
        return cid

    def restore_csm(self) -> str:
        """Back to the product's definition of the csm service, ready."""
        return self.recreate_csm()

    @contextlib.contextmanager
    def restored_after(self) -> Iterator[None]:
        try:
            yield
        finally:
            self.restore_csm()
