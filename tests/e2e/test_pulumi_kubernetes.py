"""The real Pulumi engine deploys CSM to the real local Kubernetes cluster.

`localengine/csm-local pulumi ... --stack local` runs the program with the Pulumi CLI and the
docker-build and kubernetes provider plugins built by localengine/toolchain, through the
Automation API (no Python language host is served here). The stack (Pulumi.local.yaml) builds the
image with the program's own Image component, pushes it to 127.0.0.1:5000 and deploys to the
cluster of `localengine/csm-local kube up` (the session fixture kube_cluster), reaching Cassandra in it. The stack is deployed once
per module and the tests run in file order; the last one destroys it. Under CI=true a missing
cluster or toolchain fails, never skips.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness import eso
from harness.kube import KubeCluster
from harness.poll import until

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.kube]

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "localengine" / "csm-local"
NAMESPACE = "csm"
DEPLOYMENT = "csm"
UP_TIMEOUT = 1500  # cold: the image build and Cassandra's first start on a loaded 2-core machine
LOAD_LIMIT_SECONDS = 600


def run(
    *args: str, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
            f"--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def pulumi(
    *args: str, timeout: float = UP_TIMEOUT, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run(HARNESS, "pulumi", "--stack", "local", *args, timeout=timeout, check=check, env=env)


def kubectl(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(HARNESS, "kube", "kubectl", *args, timeout=timeout, check=check)


def kube_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def stack(kube_cluster: KubeCluster) -> dict[str, Any]:
    # From nothing: no state of an earlier run (its provider may hold a kubeconfig of a cluster
    # since rebuilt) and no namespace an earlier run left in the machine-wide cluster.
    pulumi("stack", "rm", "--force", "--yes", timeout=120)
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=300)
    started = time.monotonic()
    pulumi("up", "--yes")
    print(f"pulumi up of the local stack from nothing: {time.monotonic() - started:.1f} s")
    return json.loads(pulumi("stack", "output", "--json", timeout=120).stdout)


def ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/health/ready", timeout=3).status_code
    except httpx.HTTPError:
        return 0


class Load:
    """GET /health/live in a loop until stopped (bounded in time); counts answers by status. Liveness,
    not readiness: what is measured is whether the Service ever routes a request to a pod that does
    not answer, not whether Cassandra answers every readiness check on a loaded machine."""

    def __init__(self, url: str) -> None:
        self.url, self.counts, self.stop = url, Counter(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_LIMIT_SECONDS
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    self.counts[client.get(f"{self.url}/health/live").status_code] += 1
                except httpx.HTTPError as exc:
                    self.counts[type(exc).__name__] += 1
                time.sleep(0.05)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def deployment_pods() -> list[dict]:
    return kube_json("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={DEPLOYMENT}")["items"]


def serving_pods(pods: list[dict] | None = None) -> list[dict]:
    """Running pods of the Deployment that are not on their way out (a rollout's terminating pods
    stay Running for their grace period)."""
    return [
        p
        for p in (deployment_pods() if pods is None else pods)
        if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]
    ]


def deployment_images() -> set[str]:
    return {c["image"] for p in serving_pods() for c in p["spec"]["containers"]}


def ready_pods(pods: list[dict] | None = None) -> set[str]:
    return {
        p["metadata"]["name"]
        for p in serving_pods(pods)
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    }


# ---------------------------------------------------------------- up, drift


def test_up_converges_with_every_probe_passing(stack):
    # up awaited both replicas ready; right after a cold cluster start a readiness check can still
    # miss Cassandra's answer on a loaded machine, so both must be ready again within a minute, and
    # Available (which lags a pod's readiness by the Deployment's minReadySeconds) must follow.
    def both_ready_and_available() -> bool:
        status = kube_json("get", "deployment", DEPLOYMENT, "-n", NAMESPACE)["status"]
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        if status.get("readyReplicas") == 2 and conditions.get("Available") == "True":
            return True
        raise AssertionError(f"{status}\n" + kubectl("get", "pods,events", "-n", NAMESPACE, check=False).stdout)

    started = time.monotonic()
    until("both replicas ready and the Deployment Available after up", both_ready_and_available, timeout=60)
    print(f"readyReplicas 2 of 2 and Available, {time.monotonic() - started:.1f} s after up returned")
    dep = kube_json("get", "deployment", DEPLOYMENT, "-n", NAMESPACE)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container), container
    assert container["image"] == stack["imageRef"] and "@sha256:" in container["image"]
    assert container["image"].startswith("127.0.0.1:5000/")


def test_the_image_is_pushed_with_the_stacks_layer_compression(stack):
    # Pulumi.local.yaml sets csm:imageCompression: zstd; the cluster's containerd pulled it to run the pods above.
    from bench.engine import pushed_image

    pushed = pushed_image(stack["imageRef"])
    assert pushed["layer_media_types"] == ["application/vnd.oci.image.layer.v1.tar+zstd"], pushed


def test_service_answers_on_its_url(stack):
    assert stack["serviceUrl"] == "http://127.0.0.1:30080"
    assert ready(stack["serviceUrl"]) == 200


def test_preview_right_after_up_shows_no_changes(stack):
    done = pulumi("preview", "--expect-no-changes", timeout=600)
    assert '"same"' in done.stdout, done.stdout[-2000:]


def test_refresh_finds_no_drift(stack):
    pulumi("refresh", "--yes", "--expect-no-changes", timeout=600)


# ---------------------------------------------------------------- admission, healing


def test_a_privileged_pod_is_refused_in_the_csm_namespace(stack):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "c", "image": stack["imageRef"], "securityContext": {"privileged": True}}]},
    }
    done = subprocess.run(
        [str(HARNESS), "kube", "kubectl", "create", "-f", "-"],
        input=json.dumps(pod),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert "violates PodSecurity" in done.stderr and "restricted" in done.stderr, done.stderr


def test_a_deleted_pod_is_replaced(stack):
    pods = kube_json("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={DEPLOYMENT}")["items"]
    victim = pods[0]["metadata"]["name"]
    kubectl("delete", "pod", "-n", NAMESPACE, victim, "--wait=false")

    def replaced() -> bool:
        items = kube_json("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={DEPLOYMENT}")["items"]
        names = {
            p["metadata"]["name"]
            for p in items
            if all(c["ready"] for c in p["status"].get("containerStatuses", [{"ready": False}]))
        }
        return victim not in names and len(names) == 2

    until("two ready pods again, the deleted one replaced", replaced, timeout=300)


def test_the_disruption_budget_holds_during_a_drain(stack):
    try:
        done = kubectl(
            "drain",
            "localhost",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--pod-selector",
            f"app.kubernetes.io/name={DEPLOYMENT}",
            "--timeout=40s",
            timeout=120,
            check=False,
        )
        # One node: the evicted pod cannot be placed elsewhere, so the budget (maxUnavailable 1)
        # refuses the second eviction and the drain times out with one CSM pod still running.
        assert done.returncode != 0, done.stdout
        assert "disruption budget" in (done.stdout + done.stderr), done.stderr[-2000:]
        running = [
            p
            for p in kube_json("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={DEPLOYMENT}")["items"]
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        assert len(running) >= 1
    finally:
        kubectl("uncordon", "localhost")
    until(
        "the Deployment Available again",
        lambda: kube_json("get", "deployment", DEPLOYMENT, "-n", NAMESPACE)["status"].get("readyReplicas") == 2,
        timeout=300,
    )


def test_the_autoscaler_reads_metrics(stack):
    def metrics() -> list:
        status = kube_json("get", "hpa", DEPLOYMENT, "-n", NAMESPACE)["status"]
        return [
            m
            for m in status.get("currentMetrics") or []
            if m.get("resource", {}).get("current", {}).get("averageUtilization") is not None
        ]

    found = until("the HPA's current CPU and memory utilisation", metrics, timeout=300, interval=10)
    assert {m["resource"]["name"] for m in found} == {"cpu", "memory"}


def test_external_secrets_objects_are_accepted_by_the_operator_crds(stack, tmp_path):
    from components.config import StackConfig
    from components.kubernetes import render
    from components.spec import build_spec

    crds = tmp_path / "crds.yaml"
    crds.write_text(yaml.safe_dump_all(eso_crds()))
    kubectl("apply", "--server-side", "-f", str(crds))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/externalsecrets.external-secrets.io",
        "crd/secretstores.external-secrets.io",
    )
    base = {
        "csm:environment": "dev",
        "csm:target": "kubernetes",
        "csm:kubernetesKubeconfig": "<secret>",
        "csm:cassandraContactPoints": ["cassandra"],
        "csm:cassandraLocalDc": "dc1",
        "csm:imageRegistry": "127.0.0.1:5000",
        "csm:secrets": ["CSM_MASTER_KEY=csm/master-key", "/run/secrets/csm_api_tokens=csm/api-tokens"],
        "csm:kubernetesNamespace": NAMESPACE,
        "csm:allowInsecureDev": True,
    }
    objects = []
    for store in ("ClusterSecretStore/aws", None):
        values = {
            **base,
            **({"csm:kubernetesSecretStore": store} if store else {"csm:target": "eks", "aws:region": "eu-west-1"}),
        }
        cfg = StackConfig.load(values, stack="local")
        options = render.kubernetes_options(cfg) if store else render.options_from_config(cfg)
        objects += [
            o for o in render.render_objects(build_spec(cfg), options) if o["kind"] in ("ExternalSecret", "SecretStore")
        ]
    assert {o["kind"] for o in objects} == {"ExternalSecret", "SecretStore"}
    manifest = tmp_path / "eso.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    done = kubectl("apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", str(manifest))
    assert done.stdout.count("(server dry run)") == len(objects), done.stdout


def eso_crds() -> list[dict]:
    """The ExternalSecret and SecretStore CRDs of the operator release the EKS stack installs."""
    return list(eso.crds().values())


# ---------------------------------------------------------------- updates


def test_a_new_image_digest_rolls_out_in_place_under_load(stack):
    before = deployment_images()
    pulumi("config", "set", "imageVersion", "0.0.0-rolling", timeout=120)
    with Load(stack["serviceUrl"]) as load:
        done = pulumi("up", "--yes")
        time.sleep(3)
    after = deployment_images()
    assert after and after != before, (before, after)
    assert '"update"' in done.stdout and '"replace"' not in done.stdout.split("up: ", 1)[-1], done.stdout[-1500:]
    assert load.counts[200] > 50 and set(load.counts) == {200}, dict(load.counts)


def test_an_image_that_never_turns_ready_fails_up_and_the_old_pods_keep_serving(stack):
    def settled() -> bool:
        pods = deployment_pods()
        return bool(pods) and len(ready_pods(pods)) == len(pods)

    until("the previous rollout's pods to be all ready, none terminating", settled, timeout=300)
    before = ready_pods()
    pulumi("config", "set", "healthReadyPath", "/health/never", timeout=120)
    try:
        with Load(stack["serviceUrl"]) as load:
            done = pulumi("up", "--yes", check=False)
        assert done.returncode != 0, done.stdout[-2000:]
        assert set(load.counts) == {200}, dict(load.counts)
        assert ready_pods() == before, (before, ready_pods())
    finally:
        pulumi("config", "rm", "healthReadyPath", timeout=120)
    pulumi("up", "--yes")
    assert ready(stack["serviceUrl"]) == 200


def test_an_interrupted_up_converges_when_run_again(stack):
    pulumi("config", "set", "imageVersion", "0.0.0-interrupted", timeout=120)
    proc = subprocess.Popen(
        [str(HARNESS), "pulumi", "--stack", "local", "up", "--yes"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        until(
            "the update to start changing resources",
            lambda: proc.poll() is not None or _updating(proc),
            timeout=600,
            interval=0.5,
        )
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    pulumi("up", "--yes")
    pulumi("preview", "--expect-no-changes", timeout=600)
    assert ready(stack["serviceUrl"]) == 200


_seen: list[str] = []


def _updating(proc: subprocess.Popen) -> bool:
    line = proc.stdout.readline() if proc.stdout else ""
    _seen.append(line)
    return "updating" in line or "creating" in line


# ---------------------------------------------------------------- bad input, secrets, teardown


def test_an_unreachable_cluster_fails_the_preview_naming_its_address(stack, kube_cluster, tmp_path):
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    bad = tmp_path / "unreachable.kubeconfig"
    bad.write_text(yaml.safe_dump(config))
    done = pulumi("preview", timeout=600, check=False, env={"CSM_LOCAL_KUBECONFIG": str(bad)})
    assert done.returncode != 0
    assert "127.0.0.1:1" in done.stdout + done.stderr, (done.stdout + done.stderr)[-3000:]
    pulumi("preview", "--expect-no-changes", timeout=600)  # the real kubeconfig again, nothing to change


def test_a_wrong_passphrase_gets_the_engines_message(stack, tmp_path):
    wrong = tmp_path / "passphrase"
    wrong.write_text("not-the-passphrase\n")
    done = pulumi("preview", timeout=300, check=False, env={"PULUMI_CONFIG_PASSPHRASE_FILE": str(wrong)})
    assert done.returncode != 0
    assert "passphrase" in done.stderr.lower() and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_a_locked_stack_gets_the_engines_message(stack):
    locks = ROOT / ".local" / "pulumi" / "state" / ".pulumi" / "locks" / "organization" / "csm" / "local"
    locks.mkdir(parents=True, exist_ok=True)
    lock = locks / "00000000-0000-0000-0000-000000000000.json"
    lock.write_text(
        json.dumps({"pid": 1, "username": "someone", "hostname": "elsewhere", "timestamp": "2026-12-01T00:00:00Z"})
    )
    try:
        done = pulumi("up", "--yes", timeout=300, check=False)
    finally:
        lock.unlink()
    assert done.returncode != 0
    assert "locked" in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_a_missing_toolchain_piece_names_it_and_its_build_command(tmp_path):
    done = pulumi("preview", timeout=120, check=False, env={"CSM_TOOLCHAIN_CACHE": str(tmp_path)})
    assert done.returncode != 0
    assert "pulumi v3.274.1 is not built" in done.stderr and "localengine/toolchain/build pulumi" in done.stderr, (
        done.stderr
    )


def test_the_exported_state_holds_no_plaintext_secret(stack):
    exported = pulumi("stack", "export", timeout=120).stdout
    values = [
        pulumi("config", "get", key, timeout=120).stdout.strip()
        for key in ("masterKey", "apiTokens", "cassandraPassword")
    ]
    token = values[1].rsplit(":", 1)[-1]
    for value in [*values, token]:
        assert len(value) >= 16 and value not in exported
    assert "ciphertext" in exported


def test_destroy_removes_the_namespace(stack):
    pulumi("destroy", "--yes")
    done = kubectl("get", "namespace", NAMESPACE, check=False)
    assert done.returncode != 0 and "NotFound" in done.stderr, done.stdout + done.stderr
