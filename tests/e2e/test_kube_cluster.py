"""The local Kubernetes cluster (localengine/kube) for real: node, Pod Security, DNS, NodePort,
metrics, Cassandra, an idempotent second `up`, and a `down` that leaves nothing behind.

The cluster comes from the session fixture ``kube_cluster`` (tests/e2e/harness.kube.py, registered
in tests/e2e/conftest.py), shared with every other test that needs it. Host-side traffic only goes
to 127.0.0.1 (the API server, a NodePort); pod-side checks run inside pods (`kubectl exec`).
The `down` check is decorated with ``run_last``: it runs after every other test of the session.
Under CI=true a missing prerequisite fails, never skips.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness.kube import KubeCluster, kube, run, run_last
from harness.poll import until

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.kube]

NAMESPACE = "csm-kube-e2e"
RESTRICTED_NAMESPACE = "csm-kube-e2e-restricted"
SERVICES = (
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
)


def busybox_image(cluster: KubeCluster) -> str:
    """The CoreDNS image carries a static busybox (/busybox) for its exec probes: reuse it."""
    deployment = cluster.json("-n", "kube-system", "get", "deployment", "coredns")
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.fixture(scope="module")
def probe(kube_cluster: KubeCluster) -> str:
    """A busybox pod serving HTTP on 8080 behind a NodePort Service; yields the NodePort."""
    image = busybox_image(kube_cluster)
    kube_cluster.apply(f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: probe, namespace: {NAMESPACE}, labels: {{app: probe}}}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {{runAsNonRoot: true, runAsUser: 65532, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
    - name: probe
      image: "{image}"
      command: [/busybox, sh, -c, "echo hello-from-kube > /www/index.html && exec /busybox httpd -f -p 8080 -h /www"]
      ports: [{{containerPort: 8080}}]
      securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {{drop: [ALL]}}}}
      volumeMounts: [{{name: www, mountPath: /www}}]
  volumes: [{{name: www, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: probe, namespace: {NAMESPACE}}}
spec:
  type: NodePort
  selector: {{app: probe}}
  ports: [{{port: 80, targetPort: 8080}}]
""")
    kube_cluster.kubectl("-n", NAMESPACE, "wait", "pod/probe", "--for=condition=Ready", "--timeout=180s", timeout=200)
    service = kube_cluster.json("-n", NAMESPACE, "get", "service", "probe")
    yield str(service["spec"]["ports"][0]["nodePort"])
    kube_cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_up_prints_the_kubeconfig_and_the_node_is_ready(kube_cluster: KubeCluster):
    assert kube_cluster.up_output.stdout.strip().splitlines()[-1] == str(kube_cluster.kubeconfig)
    assert kube_cluster.kubeconfig.exists()
    assert kube_cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    node = kube_cluster.json("get", "node", "localhost")
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True", conditions
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.37.2"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.7")


def test_pod_security_refuses_a_privileged_pod_in_a_restricted_namespace(kube_cluster: KubeCluster):
    kube_cluster.apply(f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {RESTRICTED_NAMESPACE}
  labels: {{pod-security.kubernetes.io/enforce: restricted}}
""")
    try:
        result = kube_cluster.kubectl(
            "-n",
            RESTRICTED_NAMESPACE,
            "apply",
            "-f",
            "-",
            check=False,
            input="""
apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  containers:
    - name: c
      image: 127.0.0.1:5000/csm/pause:none
      securityContext: {privileged: true}
""",
        )
        assert result.returncode != 0, result.stdout
        assert 'violates PodSecurity "restricted:latest"' in result.stderr, result.stderr
        assert "privileged" in result.stderr
        assert kube_cluster.kubectl("-n", RESTRICTED_NAMESPACE, "get", "pods", "-o", "name").stdout.strip() == ""
    finally:
        kube_cluster.kubectl("delete", "namespace", RESTRICTED_NAMESPACE, "--wait=false", check=False)


def nslookup(cluster: KubeCluster, name: str) -> list[str]:
    out = cluster.kubectl("-n", NAMESPACE, "exec", "probe", "--", "/busybox", "nslookup", name, check=False)
    answer = out.stdout.split(name, 1)[-1] if out.returncode == 0 else ""
    return re.findall(r"Address: *([0-9.]+)", answer)


def test_cluster_dns_resolves_service_names_from_a_pod(kube_cluster: KubeCluster, probe: str):
    resolv = kube_cluster.kubectl("-n", NAMESPACE, "exec", "probe", "--", "/busybox", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.96.0.10" in resolv
    kube_dns = kube_cluster.json("-n", "kube-system", "get", "service", "kube-dns")
    assert kube_dns["spec"]["clusterIP"] == "10.96.0.10"
    for name, namespace in (
        ("kubernetes.default.svc.cluster.local", "default"),
        (f"probe.{NAMESPACE}.svc.cluster.local", NAMESPACE),
        ("cassandra.cassandra.svc.cluster.local", "cassandra"),
    ):
        service = name.split(".")[0]
        cluster_ip = kube_cluster.json("-n", namespace, "get", "service", service)["spec"]["clusterIP"]
        addresses = until(f"{name} resolves", lambda name=name: nslookup(kube_cluster, name), timeout=60)
        assert addresses == [cluster_ip], (name, addresses)


def test_a_nodeport_service_answers_on_127_0_0_1(kube_cluster: KubeCluster, probe: str):
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{probe}/", timeout=5) as response:
            return response.read().decode()

    assert until("the NodePort answers", get, timeout=60).strip() == "hello-from-kube"


def test_pods_reach_the_api_server_through_the_kubernetes_service(kube_cluster: KubeCluster, probe: str):
    # 10.96.0.1:443 -> (kube-proxy) -> the loopback DNAT -> the API server on 127.0.0.1:6443.
    # Plain HTTP to the TLS port: the API server's TLS listener itself answers 400 (busybox has no TLS client).
    out = kube_cluster.kubectl(
        "-n",
        NAMESPACE,
        "exec",
        "probe",
        "--",
        "/busybox",
        "sh",
        "-c",
        'printf "GET / HTTP/1.0\\r\\n\\r\\n" | /busybox nc -w 10 10.96.0.1 443',
        check=False,
    )
    assert "Client sent an HTTP request to an HTTPS server" in out.stdout, (out.stdout, out.stderr)


def test_metrics_api_returns_pod_metrics(kube_cluster: KubeCluster):
    apiservice = kube_cluster.json("get", "apiservice", "v1beta1.metrics.k8s.io")
    assert {c["type"]: c["status"] for c in apiservice["status"]["conditions"]}["Available"] == "True"

    def top() -> str:
        out = kube_cluster.kubectl("top", "pod", "-n", "kube-system", "--no-headers", check=False)
        return out.stdout if out.returncode == 0 and "coredns" in out.stdout else ""

    lines = until("kubectl top pod", top, timeout=240, interval=5)
    assert re.search(r"coredns-\S+\s+\d+m\s+\d+Mi", str(lines)), lines
    metrics = json.loads(
        kube_cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods").stdout
    )
    assert metrics["items"], metrics


def test_cassandra_answers_cql_at_its_cluster_dns_name(kube_cluster: KubeCluster):
    deployment = kube_cluster.json("-n", "cassandra", "get", "deployment", "cassandra")
    assert deployment["status"].get("readyReplicas") == 1
    assert "@sha256:" in deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    out = kube_cluster.kubectl(
        "-n",
        "cassandra",
        "exec",
        "deploy/cassandra",
        "--",
        "cql",
        "-h",
        "cassandra.cassandra.svc.cluster.local",
        "SELECT data_center FROM system.local",
    )
    assert out.returncode == 0
    namespace = kube_cluster.json("get", "namespace", "cassandra")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def service_pids() -> dict[str, str]:
    status = kube("status", timeout=60).stdout
    return dict(re.findall(r"^(\S+)\s+running \(pid (\d+)\)", status, re.M))


def test_a_second_up_takes_seconds_and_changes_nothing(kube_cluster: KubeCluster):
    pids = service_pids()
    assert set(pids) == set(SERVICES), pids

    def staying_pods() -> set[str]:
        # Pods already on their way out (an image the session's first up replaced) are not the point.
        return {
            p["metadata"]["uid"]
            for p in kube_cluster.json("get", "pods", "-A")["items"]
            if "deletionTimestamp" not in p["metadata"]
        }

    pods = staying_pods()
    started = time.monotonic()
    again = kube("up", timeout=300)
    seconds = time.monotonic() - started
    print(f"\nwarm localengine/kube up: {seconds:.0f} s")
    assert again.stdout.strip().splitlines()[-1] == str(kube_cluster.kubeconfig)
    assert seconds < 90, again.stderr
    assert service_pids() == pids
    assert staying_pods() == pods
    assert "configured" not in again.stderr and "created" not in again.stderr, again.stderr


# ---------------------------------------------------------------- down, last


CONTAINERD_SOCK = "/run/csm-local-kube/containerd.sock"


def shim_sockets() -> list[Path]:
    """The sockets of the runc shims our containerd started (containerd 1.7 names them
    /run/containerd/s/sha256(<containerd address>/<namespace>/<id>), beside the Docker engine's)."""
    sockets = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "containerd-shim-runc-v2" in args[0] and CONTAINERD_SOCK in args:
            ns, sandbox = args[args.index("-namespace") + 1], args[args.index("-id") + 1]
            sockets.append(
                Path("/run/containerd/s") / hashlib.sha256(f"{CONTAINERD_SOCK}/{ns}/{sandbox}".encode()).hexdigest()
            )
    return sockets


def leftovers(state: Path, bridge_ports: list[str], sockets: list[Path]) -> list[str]:
    found = [f"shim socket {socket}" for socket in sockets if socket.exists()]
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(state) in cmdline or "/run/csm-local-kube" in cmdline:
            found.append(f"process {proc.name}: {cmdline[:200]}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount = line.split()[4]
        if mount.startswith((str(state) + "/", "/run/csm-local-kube")):
            found.append(f"mount {mount}")
    links = run("ip", "-o", "link").stdout
    found += [
        f"link {name}" for name in ["csmk8s0", *bridge_ports] if re.search(rf"^\d+: {re.escape(name)}[@:]", links, re.M)
    ]
    for save in ("iptables-save", "ip6tables-save"):
        rules = run(save).stdout
        found += [
            f"{save}: {line}"
            for line in rules.splitlines()
            if re.search(r"KUBE-|CNI-|CSM-KUBE|csmk8s0|csm-local-kube", line)
        ]
    found += [f"cgroup {path}" for path in Path("/sys/fs/cgroup").glob("*/kubepods")]
    return found


@run_last
def test_down_leaves_nothing_behind(kube_cluster: KubeCluster):
    bridge_ports = run("ip", "-o", "link", "show", "master", "csmk8s0", check=False).stdout
    ports = [m.split("@")[0] for m in re.findall(r"^\d+: (\S+):", bridge_ports, re.M)]
    assert ports, "no pod veth on csmk8s0 before down: nothing to check"
    sockets = shim_sockets()
    assert sockets and all(socket.exists() for socket in sockets), sockets
    saved = (kube_cluster.state / "sysctl.saved").read_text()
    started = time.monotonic()
    kube("down", timeout=300)
    kube_cluster.down_done = True
    print(f"\nlocalengine/kube down: {time.monotonic() - started:.0f} s")
    assert leftovers(kube_cluster.state, ports, sockets) == []
    for line in saved.splitlines():
        key, value = line.split("=", 1)
        assert run("sysctl", "-n", key).stdout.strip() == value, key
    assert service_pids() == {}
    # A second down finds nothing to do and still succeeds.
    kube("down", timeout=120)
    assert (kube_cluster.state / "pki" / "ca.crt").exists()
    assert not subprocess.run(["pgrep", "-x", "kube-apiserver"], capture_output=True).stdout
