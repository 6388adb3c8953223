"""The local Kubernetes cluster (localengine/kube) as a session fixture, for every test that needs it.

``kube_cluster`` brings the cluster up once per session (``localengine/kube up``: idempotent, seconds
when it already runs, ~5-10 min cold on this 2-core machine) and yields a ``KubeCluster`` with the
admin kubeconfig and a ``kubectl`` helper. tests/e2e/conftest.py registers it, so any test under
tests/e2e (the Kubernetes tests, the Pulumi-on-Kubernetes tests) gets the same cluster.

Tests decorated with ``@run_last`` are moved to the end of the session (conftest.py): the
``kube down`` leftover check is one, so it runs after every other test that uses the cluster.
If the cluster was up before the session, the fixture brings it up again afterwards.
Under CI=true a missing prerequisite (root, the engine, a toolchain binary) FAILS; it skips elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.proc import run

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "localengine" / "kube"
TOOLCHAIN = ROOT / "localengine" / "toolchain" / "build"
STATE = Path(os.environ.get("CSM_LOCAL_STATE", "/var/lib/csm-local")) / "kube"
ADMIN_KUBECONFIG = STATE / "admin.kubeconfig"
UP_TIMEOUT = 1800  # cold: images, Cassandra's first start, on a busy 2-core machine
DOWN_TIMEOUT = 300


def kube(*args: str, timeout: float = UP_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(str(KUBE), *args, timeout=timeout, check=check)


def run_last(test: Callable) -> Callable:
    """Mark a test to run after every other test of the session (see conftest.py)."""
    test.run_last = True  # type: ignore[attr-defined]
    return test


@dataclass
class KubeCluster:
    kubeconfig: Path
    up_output: subprocess.CompletedProcess[str]
    up_seconds: float
    was_up: bool
    state: Path = STATE
    down_done: bool = field(default=False)

    def kubectl(
        self, *args: str, timeout: float = 120, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(str(KUBE), "kubectl", *args, timeout=timeout, check=check, input=input)

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input=manifest)


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "localengine/kube needs root"
    for tool in ("docker", "containerd", "iptables", "openssl"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (localengine/csm-local engine)"
    for name in ("kubernetes", "etcd", "coredns", "metrics-server"):
        if subprocess.run([str(TOOLCHAIN), "--bin", name], capture_output=True, text=True).returncode != 0:
            return f"{name} is not built (localengine/toolchain/build {name})"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return f"the Docker engine does not answer: {info.stderr.strip()[:300]}"
    return None


def _cluster_runs() -> bool:
    if not ADMIN_KUBECONFIG.exists():
        return False
    return (
        kube("kubectl", "get", "--raw", "/readyz", "--request-timeout", "5s", timeout=30, check=False).stdout.strip()
        == "ok"
    )


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    problem = _missing_prerequisite()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the local Kubernetes cluster is required under CI=true: {problem}")
        pytest.skip(f"no local Kubernetes cluster: {problem}")
    was_up = _cluster_runs()
    started = time.monotonic()
    result = kube("up")
    seconds = time.monotonic() - started
    print(f"\nlocalengine/kube up: {seconds:.0f} s")
    cluster = KubeCluster(
        kubeconfig=Path(result.stdout.strip().splitlines()[-1]), up_output=result, up_seconds=seconds, was_up=was_up
    )
    yield cluster
    if cluster.down_done and was_up:
        kube("up")
