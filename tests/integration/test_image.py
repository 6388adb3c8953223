"""The production image (app/Dockerfile) on the real engine and the local registry.

One multi-arch build per session (localengine/build-image; skipped when the inputs are
unchanged), one native container shared by the runtime tests, one arm64 container under qemu.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
from pathlib import Path

import httpx
import pytest

from harness.containers import (
    EMULATED_START_TIMEOUT,
    NATIVE_START_TIMEOUT,
    native_platform,
    published_url,
    start_container,
    wait_until,
)
from harness.net import free_port
from harness.poll import until
from harness.proc import docker_json, run

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
NONROOT = 65532

PLATFORMS = {"linux/amd64", "linux/arm64"}
SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_KEY|MASTER_KEY", re.I)
PEM = "-----BEGIN"
# Anything that lets a process in the container start a shell, install, or compile.
FORBIDDEN = re.compile(
    r"^(usr/)?(s?bin)/(sh|bash|dash|ash|busybox|apt|apt-get|dpkg|dpkg-deb|pip[0-9.]*|gcc.*|cc|c\+\+|ld|as|make)$"
    r"|/site-packages/(pip|setuptools|wheel|pkg_resources)(/|-[0-9])"
    r"|^usr/lib/python3/dist-packages/(pip|setuptools)"
    r"|^usr/bin/python3\.11-config$|^usr/lib/gcc/"
)


def _version() -> str:
    return tomllib.loads((ROOT / "app" / "pyproject.toml").read_text())["project"]["version"]


# ---------------------------------------------------------------- what the image is


def test_manifest_list_holds_amd64_and_arm64(csm_image, registry_index: dict) -> None:
    raw = json.loads(run("docker", "buildx", "imagetools", "inspect", "--raw", csm_image.ref).stdout)
    assert raw["mediaType"] in {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }, raw["mediaType"]
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in raw["manifests"]}
    assert platforms >= PLATFORMS, f"manifest list of {csm_image.ref} has {sorted(platforms)}"
    assert raw == registry_index, "imagetools and the registry disagree on the manifest list"
    assert not csm_image.tag.endswith(":latest")


def test_each_variant_is_built_for_its_architecture(variants) -> None:
    assert set(variants) == PLATFORMS
    for platform, variant in variants.items():
        assert f"{variant.config['os']}/{variant.config['architecture']}" == platform
        triplet = {"linux/amd64": "x86_64-linux-gnu", "linux/arm64": "aarch64-linux-gnu"}[platform]
        assert f"usr/lib/{triplet}/libc.so.6" in variant.paths(), f"{platform}: no libc for {triplet}"


def test_runs_as_nonroot_65532(variants, native_container) -> None:
    for platform, variant in variants.items():
        assert variant.config["config"]["User"] == f"{NONROOT}:{NONROOT}", platform
    pid = run("docker", "inspect", "-f", "{{.State.Pid}}", native_container.id).stdout.strip()
    status = Path(f"/proc/{pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()  # type: ignore[union-attr]
    gids = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()  # type: ignore[union-attr]
    assert set(uids) == {str(NONROOT)} and set(gids) == {str(NONROOT)}, f"serve runs as uid {uids} gid {gids}"


def test_no_shell_no_package_manager_no_pip_no_compiler(variants) -> None:
    for platform, variant in variants.items():
        paths = variant.paths()
        # positive controls: the listing is the real filesystem
        assert "usr/bin/python3.11" in paths and "opt/venv/bin/python" in paths, platform
        assert any(p.startswith("var/lib/dpkg/status.d/libpython3.11-stdlib") for p in paths), platform
        found = sorted(p for p in paths if FORBIDDEN.search(p))
        assert not found, f"{platform} ships {found}"
        assert not [p for p in paths if p.startswith(("var/lib/apt", "etc/apt", "var/cache/apt"))], platform


def test_exec_form_entrypoint_and_healthcheck(csm_image) -> None:
    config = csm_image.config["Config"]
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", "csm"]
    assert config["Cmd"] == ["serve"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/opt/venv/bin/python", "-m", "csm", "healthcheck"]


def test_oci_labels_and_build_env(csm_image, variants) -> None:
    for platform, variant in variants.items():
        labels = variant.config["config"]["Labels"]
        env = dict(item.split("=", 1) for item in variant.config["config"]["Env"])
        assert labels["org.opencontainers.image.title"] == "csm", platform
        assert labels["org.opencontainers.image.version"] == _version(), platform
        revision = labels["org.opencontainers.image.revision"]
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", revision), revision
        created = dt.datetime.fromisoformat(labels["org.opencontainers.image.created"].replace("Z", "+00:00"))
        assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(days=30), created
        assert labels["org.opencontainers.image.source"], "empty source label"
        assert "@sha256:" in labels["org.opencontainers.image.base.name"], "base image not pinned by digest"
        assert env["CSM_BUILD_VERSION"] == labels["org.opencontainers.image.version"]
        assert env["CSM_BUILD_COMMIT"] == revision
        assert env["CSM_BUILD_DATE"] == labels["org.opencontainers.image.created"]
    # the tag names the version and the commit the image was built from
    assert csm_image.tag.split(":")[-1].startswith(f"{_version()}-")


def test_no_secret_in_layers_history_config_or_environment(csm_image, variants, native_container) -> None:
    for platform, variant in variants.items():
        assert not variant.secret_hits, f"{platform}: the build's CA secret is in a layer: {variant.secret_hits}"
        config = variant.config["config"]
        for item in config.get("Env", []):
            name, _, value = item.partition("=")
            assert not SECRET_WORDS.search(name), f"{platform}: secret-like variable {name} in the image config"
            assert PEM not in value
        for name, value in config.get("Labels", {}).items():
            assert not SECRET_WORDS.search(name) and PEM not in value, f"{platform}: label {name}"
        for step in variant.config.get("history", []):
            created_by = step.get("created_by", "")
            assert PEM not in created_by and "/run/secrets/ca " not in created_by, created_by[:200]
    history = run("docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", csm_image.ref).stdout
    assert history.strip(), "docker history printed nothing"
    assert PEM not in history and "secrets/ca" not in history
    # the running container got its secrets as files: none is in its environment
    env = json.loads(run("docker", "inspect", "-f", "{{json .Config.Env}}", native_container.id).stdout)
    leaked = [item.split("=", 1)[0] for item in env if SECRET_WORDS.search(item.split("=", 1)[0])]
    assert not leaked, f"secret-like variables in the container's environment: {leaked}"


# ---------------------------------------------------------------- how it runs


def test_starts_read_only_and_answers_live_on_loopback(native_container) -> None:
    host = json.loads(run("docker", "inspect", "-f", "{{json .HostConfig}}", native_container.id).stdout)
    assert host["ReadonlyRootfs"] is True
    assert set(host["Tmpfs"]) == {"/tmp"}
    assert native_container.url.startswith("http://127.0.0.1:")
    response = httpx.get(f"{native_container.url}/health/live", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    # No Cassandra reachable from the bridge network: live, but not ready.
    assert httpx.get(f"{native_container.url}/health/ready", timeout=5).status_code == 503


def test_root_filesystem_is_read_only_and_tmp_is_writable(native_container) -> None:
    probe = (
        "import os\n"
        "try:\n    open('/opt/venv/probe', 'w')\nexcept OSError as e:\n    print('root', e.errno)\n"
        "open('/tmp/probe', 'w').write('x'); print('tmp', os.path.getsize('/tmp/probe'))\n"
    )
    out = run("docker", "exec", native_container.id, "/opt/venv/bin/python", "-c", probe).stdout.split("\n")
    assert out[0] == "root 30", f"writing to /opt/venv did not fail with EROFS: {out}"
    assert out[1] == "tmp 1"


def test_info_reports_the_build(csm_image, native_container) -> None:
    labels = csm_image.config["Config"]["Labels"]
    info = httpx.get(f"{native_container.url}/info", timeout=5).json()
    assert info["version"] == _version() == labels["org.opencontainers.image.version"]
    assert info["git_commit"] == labels["org.opencontainers.image.revision"]
    assert info["build_date"] == labels["org.opencontainers.image.created"]
    assert info["python_version"].startswith("3.11.")
    # build-image reuses an image while app/ is unchanged: its revision is a commit of this repository
    commit = info["git_commit"].removesuffix("-dirty")
    assert run("git", "-C", str(ROOT), "cat-file", "-t", commit).stdout.strip() == "commit"


def test_healthcheck_turns_healthy(native_container) -> None:
    def healthy() -> dict | None:
        health = docker_json("inspect", "-f", "{{json .State.Health}}", native_container.id)
        return health if health["Status"] == "healthy" else None

    health = until(f"{native_container.id} healthy", healthy, timeout=90)
    assert health["Log"][-1]["ExitCode"] == 0


def test_healthcheck_command_fails_when_nothing_listens(native_container) -> None:
    result = run(
        "docker",
        "exec",
        native_container.id,
        "/opt/venv/bin/python",
        "-m",
        "csm",
        "healthcheck",
        "--port",
        "1",
        check=False,
    )
    assert result.returncode == 1, result


def test_what_the_slimmed_image_keeps_still_works(native_container) -> None:
    """The Dockerfile drops most of botocore's models, the stdlib's test modules and every .py but the
    csm package's: the Keyspaces SigV4 login (the credential chain's clients) and the modules the
    service and its tools load still import and run."""
    code = (
        "import boto3\n"
        "from cassandra_sigv4.auth import SigV4AuthProvider\n"
        "session = boto3.Session(region_name='eu-west-1')\n"
        "for service in ('sts', 'sso', 'sso-oidc', 'signin'):\n"
        "    session.client(service)\n"
        "SigV4AuthProvider(session)\n"
        "import csm.app, csm.cli, csm.store, cassandra.io.libevreactor, uvloop, httptools, multiprocessing, ssl\n"
        "import csm.app as app\n"
        "assert app.__file__.endswith('.py'), app.__file__\n"
        "print('ok')\n"
    )
    result = run("docker", "exec", native_container.id, "/opt/venv/bin/python", "-c", code, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr[-2000:]
    models = (
        "import botocore, os; data = os.path.join(os.path.dirname(botocore.__file__), 'data'); "
        "print(sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d))))"
    )
    kept = run("docker", "exec", native_container.id, "/opt/venv/bin/python", "-c", models).stdout.strip()
    assert kept == "['signin', 'sso', 'sso-oidc', 'sts']", f"botocore models in the image: {kept}"


def test_arm64_variant_starts_under_qemu_and_answers_live(csm_image, service_secrets: Path) -> None:
    cid = start_container(csm_image, "linux/arm64", service_secrets)
    try:
        url = run("docker", "port", cid, "8000/tcp").stdout.splitlines()[0].rsplit(":", 1)[1]
        wait_until(f"http://127.0.0.1:{url}/health/live", EMULATED_START_TIMEOUT, container=cid)
        info = httpx.get(f"http://127.0.0.1:{url}/info", timeout=30).json()
        assert info["architecture"] == "aarch64", info["architecture"]
    finally:
        run("docker", "rm", "-f", cid, check=False)


@pytest.mark.cassandra
def test_becomes_ready_with_cassandra(csm_image, service_secrets: Path, cassandra: None, tmp_path: Path) -> None:
    """With the host Cassandra (cassandra/run) reached over host networking, /health/ready turns 200."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for source in service_secrets.iterdir():
        (secrets_dir / source.name).write_bytes(source.read_bytes())
    (secrets_dir / "csm_cassandra_password").write_text("cassandra\n")
    for path in (secrets_dir, *secrets_dir.iterdir()):
        os.chown(path, NONROOT, NONROOT)
    port = free_port()
    cid = start_container(
        csm_image,
        native_platform(),
        secrets_dir,
        "--env",
        "CSM_CASSANDRA_CONTACT_POINTS=127.0.0.1",
        "--env",
        "CSM_CASSANDRA_USERNAME=cassandra",
        "--env",
        "CSM_CASSANDRA_KEYSPACE=csm_image_test",
        network_host_port=port,
    )
    try:
        wait_until(f"http://127.0.0.1:{port}/health/ready", 120, container=cid)
        body = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json()
        assert body["status"] == "ready", body
    finally:
        run("docker", "rm", "-f", cid, check=False)


def test_two_workers_serve_read_only_and_stop_cleanly(csm_image, service_secrets: Path) -> None:
    """CSM_WORKERS=2 in the hardened container: the workers spawn from the slimmed interpreter, their
    metric files go to the tmpfs /tmp, both answer, and `docker stop` drains them to exit 0."""
    cid = start_container(csm_image, native_platform(), service_secrets, "--env", "CSM_WORKERS=2")
    try:
        url = published_url(cid)
        wait_until(f"{url}/health/live", NATIVE_START_TIMEOUT, container=cid)
        top = run("docker", "top", cid, "-o", "pid,args").stdout
        assert top.count("--multiprocessing-fork") == 2, top
        for _ in range(20):
            assert httpx.get(f"{url}/v1/authorities", timeout=5).status_code == 401
        page = httpx.get(f"{url}/metrics", timeout=5).text
        assert 'csm_http_requests_total{method="GET",route="/v1/authorities",status="401"} 20.0' in page, page[:3000]
        run("docker", "stop", "-t", "30", cid, timeout=60)
        assert docker_json("inspect", "-f", "{{json .State.ExitCode}}", cid) == 0
        processes = {
            json.loads(line)["process"]
            for line in run("docker", "logs", cid).stdout.splitlines()
            if "shutdown complete" in line
        }
        assert len(processes) == 2, processes
    finally:
        run("docker", "rm", "-f", cid, check=False)


def test_debug_target_adds_a_shell_and_tools(debug_image) -> None:
    out = run(
        "docker",
        "run",
        "--rm",
        "--read-only",
        "--entrypoint",
        "/bin/sh",
        debug_image,
        "-c",
        "id -u; ls /opt/venv/bin/python; wget --help 2>&1 | head -n1; python3 -c 'print(6*7)'",
    ).stdout.split("\n")
    assert out[0] == str(NONROOT), out
    assert out[1] == "/opt/venv/bin/python"
    assert "BusyBox" in out[2]
    assert out[3] == "42"
    config = json.loads(run("docker", "image", "inspect", "-f", "{{json .Config}}", debug_image).stdout)
    assert config["User"] == f"{NONROOT}:{NONROOT}"
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", "csm"]
