"""Session fixtures for the image tests: the engine, the CSM image, its filesystem, running containers.

The image is built (or found up to date) once per session by ``localengine/build-image``; the
containers are started once and shared. Under CI=true a missing engine or Cassandra FAILS.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.containers import (
    NATIVE_START_TIMEOUT,
    Container,
    Image,
    native_platform,
    published_url,
    start_container,
    wait_until,
)
from harness.envfile import read_env
from harness.proc import docker_json, run
from harness.service_secrets import NONROOT, write_service_secrets

ROOT = Path(__file__).resolve().parents[2]
BUILD_IMAGE = ROOT / "localengine" / "build-image"
IMAGE_ENV = ROOT / ".local" / "image.env"
BUILD_TIMEOUT = 1800  # a cold multi-arch build on 2 cores, with arm64 under qemu


def _unavailable(what: str, problem: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true (run localengine/csm-local prereqs): {problem}")
    pytest.skip(f"no {what}: {problem}")


@pytest.fixture(scope="session")
def engine() -> None:
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        _unavailable("the Docker engine", str(error))
        return
    if result.returncode != 0:
        _unavailable("the Docker engine", result.stderr.strip()[:300])


@pytest.fixture(scope="session")
def csm_image(engine: None) -> Image:
    """The multi-arch CSM image for the current tree, built by build-image unless already up to date."""
    result = subprocess.run([str(BUILD_IMAGE)], capture_output=True, text=True, timeout=BUILD_TIMEOUT, cwd=ROOT)
    assert result.returncode == 0, f"build-image exited {result.returncode}\n{result.stderr[-6000:]}"
    env = read_env(IMAGE_ENV)
    ref = env["CSM_IMAGE"]
    assert "@sha256:" in ref, f"CSM_IMAGE is not pinned by digest: {ref}"
    config = docker_json("image", "inspect", ref)[0]  # type: ignore[index]
    return Image(
        ref=ref, tag=env["CSM_IMAGE_TAG"], platforms=tuple(env["CSM_IMAGE_PLATFORMS"].split(",")), config=config
    )


MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def _pem_bodies(text: str) -> set[str]:
    return {"".join(block.split("-----")[0].split()) for block in text.split("-----BEGIN CERTIFICATE-----")[1:]}


def secret_needles() -> dict[str, bytes]:
    """What must never be found in the image: the CA bundle given to the build as the `ca` secret.

    Its certificates that are not Mozilla's (the intercepting proxy's CA on these machines) are
    searched for by a 48-character run of their PEM base64, plus the whole file by its bytes.
    """
    source = Path(os.environ.get("CSM_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
    needles: dict[str, bytes] = {}
    if not source.is_file():
        return needles
    mozilla: set[str] = set()
    for crt in Path("/usr/share/ca-certificates/mozilla").glob("*.crt"):
        mozilla |= _pem_bodies(crt.read_text(errors="replace"))
    for n, body in enumerate(sorted(_pem_bodies(source.read_text(errors="replace")) - mozilla)):
        needles[f"non-Mozilla certificate #{n + 1} of {source}"] = body[64:112].encode()
    needles[f"the whole of {source}"] = source.read_bytes()
    return needles


@dataclass
class Layer:
    digest: str
    files: dict[str, tarfile.TarInfo]


@dataclass
class Variant:
    platform: str
    manifest_digest: str
    config: dict  # the image config blob: Env, Labels, User, history ...
    layers: list[Layer]
    secret_hits: list[str]  # "<needle> in <layer>:<path>"

    def paths(self) -> set[str]:
        return {path for layer in self.layers for path in layer.files}


@pytest.fixture(scope="session")
def registry_index(csm_image: Image) -> dict:
    """The manifest list as the registry serves it."""
    repo, digest = csm_image.ref.split("@")
    host, name = repo.split("/", 1)
    response = httpx.get(f"http://{host}/v2/{name}/manifests/{digest}", headers={"Accept": MANIFEST_TYPES}, timeout=30)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="session")
def variants(csm_image: Image, registry_index: dict) -> dict[str, Variant]:
    """Every platform's config and every layer's file list, read from the registry's blobs,
    each regular file searched for the build's secrets on the way."""
    repo = csm_image.ref.split("@")[0]
    host, name = repo.split("/", 1)
    base = f"http://{host}/v2/{name}"
    needles = secret_needles()
    result: dict[str, Variant] = {}
    with httpx.Client(timeout=120) as client:
        for entry in registry_index["manifests"]:
            platform = f"{entry['platform']['os']}/{entry['platform']['architecture']}"
            if platform == "unknown/unknown":  # attestation manifests
                continue
            manifest = client.get(f"{base}/manifests/{entry['digest']}", headers={"Accept": MANIFEST_TYPES}).json()
            config = client.get(f"{base}/blobs/{manifest['config']['digest']}").json()
            layers: list[Layer] = []
            hits: list[str] = []
            for descriptor in manifest["layers"]:
                with client.stream("GET", f"{base}/blobs/{descriptor['digest']}") as response:
                    response.raise_for_status()
                    stream = _ResponseReader(response.iter_bytes())
                    files: dict[str, tarfile.TarInfo] = {}
                    with tarfile.open(fileobj=stream, mode="r|*") as tar:
                        for member in tar:
                            files[member.name.removeprefix("./").rstrip("/")] = member
                            if member.isfile() and needles:
                                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                                hits += [
                                    f"{what} in {descriptor['digest'][:19]}:{member.name}"
                                    for what, needle in needles.items()
                                    if needle in data
                                ]
                layers.append(Layer(descriptor["digest"], files))
            result[platform] = Variant(platform, entry["digest"], config, layers, hits)
    return result


class _ResponseReader:
    """A file-like reader over an iterator of bytes (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


@pytest.fixture(scope="session")
def service_secrets() -> Iterator[Path]:
    """The service's two required secrets as files (never environment variables), readable by 65532 only."""
    directory = Path(tempfile.mkdtemp(prefix="csm-image-test-"))
    write_service_secrets(directory, "image-test", owner=NONROOT)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def native_container(csm_image: Image, service_secrets: Path) -> Iterator[Container]:
    """The native variant, read-only with a tmpfs /tmp, no Cassandra reachable: live, not ready."""
    platform = native_platform()
    cid = start_container(csm_image, platform, service_secrets)
    try:
        url = published_url(cid)
        wait_until(f"{url}/health/live", NATIVE_START_TIMEOUT, container=cid)
        yield Container(id=cid, url=url, platform=platform)
    finally:
        run("docker", "rm", "-f", cid, check=False)


@pytest.fixture(scope="session")
def cassandra() -> None:
    """The host Cassandra of cassandra/run (CQL on 127.0.0.1:9042)."""
    try:
        with socket.create_connection(("127.0.0.1", 9042), timeout=3):
            return
    except OSError as error:
        _unavailable("Cassandra on 127.0.0.1:9042 (cassandra/run start)", str(error))


@pytest.fixture(scope="session")
def debug_image(engine: None) -> str:
    """The debug target (runtime + busybox) for the native platform only."""
    platform = native_platform().split("/")[1]
    result = subprocess.run(
        [str(BUILD_IMAGE), "--target", "debug", "--platform", platform],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"build-image --target debug exited {result.returncode}\n{result.stderr[-6000:]}"
    return read_env(IMAGE_ENV)["CSM_IMAGE_DEBUG"]
