"""The CSM image's containers for the image tests: started hardened as a deployment would run them,
and waited for until they answer (or stop running, with their logs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.poll import wait_for
from harness.proc import run

NATIVE_START_TIMEOUT = 60
EMULATED_START_TIMEOUT = 300  # python under qemu-user is 10-20x slower


def native_platform() -> str:
    arch = run("docker", "info", "--format", "{{.Architecture}}").stdout.strip()
    return {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(arch, f"linux/{arch}")


@dataclass(frozen=True)
class Image:
    ref: str  # repo@sha256:<manifest list digest>
    tag: str
    platforms: tuple[str, ...]
    config: dict  # `docker image inspect` of the native variant


@dataclass(frozen=True)
class Container:
    id: str
    url: str
    platform: str


def wait_until(url: str, timeout: float, status: int = 200, container: str | None = None) -> float:
    """``wait_for`` that gives up when the container stops running, and fails with its logs."""

    def stopped() -> bool:
        return (
            container is not None
            and run("docker", "inspect", "-f", "{{.State.Running}}", container).stdout.strip() != "true"
        )

    try:
        return wait_for(url, status, timeout, interval=0.25, give_up=stopped)
    except TimeoutError as error:
        logs = run("docker", "logs", "--tail", "40", container, check=False).stderr if container else ""
        raise AssertionError(f"{error}\n{logs}") from None


def start_container(
    image: Image, platform: str, secrets_dir: Path, *extra: str, network_host_port: int | None = None
) -> str:
    args = [
        "docker",
        "run",
        "--detach",
        "--platform",
        platform,
        "--read-only",
        "--tmpfs",
        "/tmp:rw,noexec,nosuid,size=16m",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--volume",
        f"{secrets_dir}:/run/secrets:ro",
        "--label",
        "csm.test=image",
    ]
    if network_host_port is None:
        args += ["--publish", "127.0.0.1::8000"]
    else:
        args += ["--network", "host", "--env", "CSM_HOST=127.0.0.1", "--env", f"CSM_PORT={network_host_port}"]
    return run(*args, *extra, image.ref).stdout.strip()


def published_url(cid: str) -> str:
    port = run("docker", "port", cid, "8000/tcp").stdout.splitlines()[0].rsplit(":", 1)[1]
    return f"http://127.0.0.1:{port}"
