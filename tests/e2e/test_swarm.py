"""The Swarm target end to end, on a real single-node Swarm of the local engine.

`localengine/swarm up` renders deploy/swarm/local/config.yaml with components/swarm/render.py
(the Pulumi component's renderer), creates the content-versioned Docker secrets and deploys
with deploy/swarm/stack-deploy (the Pulumi component's deploy step): CSM (2 dnsrr replicas)
behind the HAProxy service published in host mode on 127.0.0.1:8100, and Cassandra with a
named volume in the same stack. The stack is deployed once per module and reused; the tests
run in file order (each one leaves the stack serving for the next). Under CI=true a missing
engine fails, never skips.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from harness.poll import until
from harness.proc import docker_json, run

pytestmark = [pytest.mark.e2e, pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
SWARM = ROOT / "localengine" / "swarm"
SECRETS = ROOT / ".local" / "swarm" / "secrets"
STACK_FILE = ROOT / "build" / "swarm" / "local" / "stack.yaml"
IMAGE_ENV = ROOT / ".local" / "image.env"
STACK = "csm-swarm"
CSM_SERVICE = f"{STACK}_csm"
BASE_URL = "http://127.0.0.1:8100"
UP_TIMEOUT = 900  # cold: proxy image build + Cassandra's first start on a loaded 2-core machine
ROLLOUT_TIMEOUT = 600
LOAD_LIMIT_SECONDS = 600  # the load thread stops by itself after this, whatever happens
SECRET_FILES = {
    "csm_api_tokens": "apiTokens",
    "csm_master_key": "masterKey",
    "csm_cassandra_password": "cassandraPassword",
}


# ---------------------------------------------------------------- helpers


def swarm(*args: str, timeout: float = UP_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(str(SWARM), *args, timeout=timeout, check=check)


def csm_containers() -> list[str]:
    out = run("docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={CSM_SERVICE}").stdout
    return out.split()


def service_image(service: str = CSM_SERVICE) -> str:
    return docker_json("service", "inspect", service)[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def running_tasks(service: str) -> list[dict]:
    out = run("docker", "service", "ps", service, "--filter", "desired-state=running", "--format", "{{json .}}").stdout
    return [t for t in map(json.loads, out.splitlines()) if t["CurrentState"].startswith("Running")]


def py_in(container: str, code: str) -> str:
    """Run Python in a CSM container (the image has no shell; it has its Python)."""
    return run("docker", "exec", container, "/opt/venv/bin/python", "-c", code).stdout


def build_variant(base: str, tag: str, dockerfile_tail: str) -> str:
    """A new image on top of ``base`` (metadata only: no shell needed), pushed; returns repo@digest."""
    platform = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}[
        run("docker", "info", "--format", "{{.Architecture}}").stdout.strip()
    ]
    repo = "127.0.0.1:5000/csm/csm-swarm-e2e"
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Dockerfile").write_text(f"FROM {base}\n{dockerfile_tail}\n")
        meta = Path(context, "meta.json")
        run(
            "docker",
            "buildx",
            "build",
            "--platform",
            platform,
            "--provenance=false",
            "--metadata-file",
            str(meta),
            "-t",
            f"{repo}:{tag}",
            "--push",
            context,
            timeout=300,
        )
        digest = json.loads(meta.read_text())["containerimage.digest"]
    return f"{repo}@{digest}"


@dataclass
class Load:
    """Steady GET traffic through the proxy in a thread: /info (which version answers) and a
    certificate read (the service and Cassandra). Bounded by ``stop()`` and LOAD_LIMIT_SECONDS."""

    token: str
    certificate_id: str
    period: float = 0.05
    statuses: Counter = field(default_factory=Counter)
    versions: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + LOAD_LIMIT_SECONDS
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=BASE_URL, timeout=10, headers=headers) as client:
            n = 0
            while not self._stop.is_set() and time.monotonic() < deadline:
                n += 1
                path = "/info" if n % 2 else f"/v1/certificates/{self.certificate_id}"
                try:
                    response = client.get(path)
                    self.statuses[response.status_code] += 1
                    if response.status_code != 200:
                        self.failures.append((time.strftime("%X"), path, response.status_code, response.text[:200]))
                    elif path == "/info":
                        self.versions.append(response.json()["version"])
                except httpx.HTTPError as error:
                    self.statuses["error"] += 1
                    self.failures.append((time.strftime("%X"), path, type(error).__name__, str(error)[:200]))
                time.sleep(self.period)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def deployed():
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
        problem = None if info.returncode == 0 else info.stderr.strip()[:300]
    except (OSError, subprocess.TimeoutExpired) as error:
        problem = str(error)
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Docker engine is required under CI=true (localengine/csm-local prereqs): {problem}")
        pytest.skip(f"no Docker engine: {problem}")
    was_up = bool(
        run(
            "docker", "service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}", check=False
        ).stdout.strip()
    )
    started = time.monotonic()
    result = swarm("up")
    print(f"\nlocalengine/swarm up: {time.monotonic() - started:.0f} s")
    yield result
    if not was_up:
        swarm("down", timeout=180)


@pytest.fixture(scope="module")
def token(deployed) -> str:
    return (SECRETS / "api_token").read_text().strip()


@pytest.fixture(scope="module")
def certificate(deployed, token) -> dict:
    """A certificate issued right after the first deploy; the last test finds it again."""
    with httpx.Client(base_url=BASE_URL, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        authority = client.post("/v1/authorities", json={"name": "swarm e2e CA"})
        assert authority.status_code == 201, authority.text
        issued = client.post(
            "/v1/certificates",
            json={
                "authority_id": authority.json()["id"],
                "kind": "node",
                "common_name": "node1.swarm.e2e",
                "dns_names": ["node1.swarm.e2e"],
                "ip_addresses": ["127.0.0.1"],
                "validity_days": 30,
            },
        )
        assert issued.status_code == 201, issued.text
        return issued.json()


@pytest.fixture(scope="module")
def original_image(deployed) -> str:
    return service_image()


# ---------------------------------------------------------------- converged, locked down


def test_services_converge_healthy_and_csm_answers_on_8100(deployed):
    services = {
        s["Name"]: s
        for s in map(
            json.loads, run("docker", "stack", "services", STACK, "--format", "{{json .}}").stdout.splitlines()
        )
    }
    assert set(services) == {f"{STACK}_csm", f"{STACK}_proxy", f"{STACK}_cassandra"}
    for name in services:
        desired = 2 if name == CSM_SERVICE else 1
        assert len(running_tasks(name)) == desired, f"{name}: {len(running_tasks(name))} running, want {desired}"
    for container in csm_containers():
        assert docker_json("inspect", container)[0]["State"]["Health"]["Status"] == "healthy"
    response = httpx.get(f"{BASE_URL}/health/ready", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "ready", response.text


def test_the_running_service_is_the_rendered_file(deployed):
    rendered = yaml.safe_load(STACK_FILE.read_text())
    container = docker_json("service", "inspect", CSM_SERVICE)[0]["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert container["Image"] == rendered["services"]["csm"]["image"]
    assert {s["SecretName"] for s in container["Secrets"]} == {s["name"] for s in rendered["secrets"].values()}
    assert container["Healthcheck"]["Test"] == rendered["services"]["csm"]["healthcheck"]["test"]


def test_docker_honours_every_rendered_key(deployed):
    result = run("docker", "stack", "config", "-c", str(STACK_FILE))
    assert "Ignoring unsupported options" not in result.stdout + result.stderr, result.stderr


def test_secrets_are_files_owned_by_65532_mode_0400(deployed):
    code = (
        "import json, os; print(json.dumps({n: [os.stat('/run/secrets/' + n).st_uid, os.stat('/run/secrets/' + n).st_gid,"
        " oct(os.stat('/run/secrets/' + n).st_mode & 0o777)] for n in os.listdir('/run/secrets')}))"
    )
    for container in csm_containers():
        files = json.loads(py_in(container, code))
        assert set(SECRET_FILES) <= set(files), files
        for name in SECRET_FILES:
            assert files[name] == [65532, 65532, "0o400"], f"{container}: /run/secrets/{name} is {files[name]}"


def test_secret_values_are_absent_from_environment_and_inspect(deployed):
    values = {name: (SECRETS / key).read_text().strip() for name, key in SECRET_FILES.items()}
    service = run("docker", "service", "inspect", CSM_SERVICE).stdout
    for container in csm_containers():
        inspected = run("docker", "inspect", container).stdout
        environ = py_in(container, "import os; print('\\n'.join(f'{k}={v}' for k, v in os.environ.items()))")
        for name, value in values.items():
            for where, text in (
                ("docker service inspect", service),
                ("docker inspect", inspected),
                ("the environment", environ),
            ):
                assert value not in text, f"the {name} secret is in {where} of {container}"
        assert "CSM_API_TOKENS_FILE=/run/secrets/csm_api_tokens" in environ


def test_csm_runs_locked_down(deployed):
    for container in csm_containers():
        inspected = docker_json("inspect", container)[0]
        host = inspected["HostConfig"]
        assert inspected["Config"]["User"] == "65532:65532"
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        assert {"Type": "tmpfs", "Target": "/tmp"}.items() <= next(
            m for m in host["Mounts"] if m["Target"] == "/tmp"
        ).items()
        assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0
        status = py_in(container, "print(open('/proc/1/status').read())")
        assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status


def test_no_new_privileges_is_the_daemons_setting_on_swarm(deployed):
    # docker stack deploy ignores security_opt; on Swarm no-new-privileges comes from the
    # daemon ("no-new-privileges": true in daemon.json). What holds is whatever the daemon says.
    daemon_sets_it = any(
        "no-new-privileges" in opt for opt in docker_json("info", "--format", "{{json .SecurityOptions}}")
    )
    for container in csm_containers():
        status = py_in(container, "print(open('/proc/1/status').read())")
        assert f"NoNewPrivs:\t{int(daemon_sets_it)}" in status


def test_overlay_is_encrypted_and_replicas_sit_behind_the_host_mode_proxy(deployed):
    network = docker_json("network", "inspect", f"{STACK}_backend")[0]
    assert network["Driver"] == "overlay" and network["Options"].get("encrypted") == "true"
    csm = docker_json("service", "inspect", CSM_SERVICE)[0]
    assert csm["Spec"]["EndpointSpec"]["Mode"] == "dnsrr" and not csm["Spec"]["EndpointSpec"].get("Ports")
    ports = docker_json("service", "inspect", f"{STACK}_proxy")[0]["Spec"]["EndpointSpec"]["Ports"]
    assert [(p["PublishMode"], p["PublishedPort"], p["TargetPort"]) for p in ports] == [("host", 8100, 8080)]


# ---------------------------------------------------------------- availability


def test_a_killed_replica_loses_no_request_and_is_replaced(deployed, token, certificate):
    victim = csm_containers()[0]
    with Load(token, certificate["id"]) as load:
        time.sleep(3)
        run("docker", "kill", victim)
        until(
            "Swarm replaces the killed replica with a healthy one",
            lambda: victim not in csm_containers() and len(running_tasks(CSM_SERVICE)) == 2,
            timeout=180,
            interval=2,
        )
        time.sleep(3)
    print(f"\nkilled replica: {load.total} requests, {dict(load.statuses)}")
    assert load.total > 20 and load.failures == [], load.failures[:10]


def test_rolling_update_under_load_loses_no_request(deployed, token, certificate, original_image):
    old_version = httpx.get(f"{BASE_URL}/info", timeout=10).json()["version"]
    new_version = f"{old_version}-swarm-e2e-2"
    image = build_variant(
        original_image,
        "v2",
        f'ENV CSM_BUILD_VERSION={new_version}\nLABEL org.opencontainers.image.version="{new_version}"',
    )
    started = time.monotonic()
    with Load(token, certificate["id"]) as load:
        swarm("up", "--image", image, timeout=ROLLOUT_TIMEOUT)
        time.sleep(2)
    print(
        f"\nrolling update: {time.monotonic() - started:.0f} s, {load.total} requests, {dict(load.statuses)}, "
        f"versions {dict(Counter(load.versions))}"
    )
    assert load.failures == [], load.failures[:10]
    assert load.total > 100
    assert old_version in load.versions and load.versions[-1] == new_version
    assert service_image() == image
    assert {t["Image"] for t in running_tasks(CSM_SERVICE)} == {image}


def test_update_to_an_image_failing_its_health_check_rolls_back(deployed, token, certificate):
    serving = service_image()
    version = httpx.get(f"{BASE_URL}/info", timeout=10).json()["version"]
    # Starts and runs, but never serves: its health check (the stack's `csm healthcheck`) fails.
    broken = build_variant(
        serving,
        "broken",
        "ENV CSM_BUILD_VERSION=broken\n"
        'ENTRYPOINT ["/opt/venv/bin/python", "-c", "import signal, sys, time; '
        'signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(86400)"]',
    )
    started = time.monotonic()
    with Load(token, certificate["id"]) as load:
        result = swarm("up", "--image", broken, timeout=ROLLOUT_TIMEOUT, check=False)
        time.sleep(2)
    print(f"\nfailed update: {time.monotonic() - started:.0f} s, {load.total} requests, {dict(load.statuses)}")
    assert result.returncode != 0, "a rolled-back update must fail the deploy"
    assert "rolled back" in result.stderr, result.stderr[-2000:]
    status = docker_json("service", "inspect", CSM_SERVICE)[0]["UpdateStatus"]
    assert status["State"] == "rollback_completed", status
    assert service_image() == serving
    assert load.failures == [] and load.total > 100, load.failures[:10]
    assert set(load.versions) == {version}, "only the old version may answer"


def test_removing_the_stack_keeps_cassandras_volume_and_a_redeploy_finds_the_data(deployed, token, certificate):
    serving = service_image()
    swarm("down", timeout=180)
    assert (
        run("docker", "service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}").stdout.strip()
        == ""
    )
    volume = re.search(r"^Data: +volume (\S+)$", deployed.stdout, re.MULTILINE)
    assert volume, f"up did not say which volume holds the data:\n{deployed.stdout}"
    assert volume.group(1) in run("docker", "volume", "ls", "--format", "{{.Name}}").stdout.split(), (
        "stack rm removed the data volume"
    )
    kept = run("docker", "secret", "ls", "--format", "{{.Name}}").stdout.split()
    assert {s["name"] for s in yaml.safe_load(STACK_FILE.read_text())["secrets"].values()} <= set(kept), (
        "stack rm removed the secrets"
    )
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{BASE_URL}/health/live", timeout=3)
    started = time.monotonic()
    swarm("up", "--image", serving)
    print(f"\nredeploy after stack rm: {time.monotonic() - started:.0f} s")
    response = httpx.get(
        f"{BASE_URL}/v1/certificates/{certificate['id']}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["serial_number"], body["certificate_pem"]) == (
        certificate["serial_number"],
        certificate["certificate_pem"],
    )
