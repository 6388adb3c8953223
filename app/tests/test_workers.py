"""Several worker processes (CSM_WORKERS): the count from the container's CPU limit, and a real
``csm serve`` with two workers and no Cassandra: both answer, the metrics count every worker's
requests, a killed worker is replaced without losing its counts, and SIGTERM exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from csm import workers
from harness.net import free_port
from harness.poll import until
from harness.service import Secrets, Service, make_secrets, metric


def cgroup(tmp_path: Path, v2: str | None = None, v1: tuple[int, int] | None = None) -> Path:
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(f"{v1[0]}\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(f"{v1[1]}\n")
    return tmp_path


@pytest.mark.parametrize(
    ("v2", "v1", "limit"),
    [
        ("max 100000", None, None),
        ("200000 100000", None, 2.0),
        ("150000 100000", None, 1.5),
        (None, (50000, 100000), 0.5),
        (None, (-1, 100000), None),
        (None, None, None),
    ],
)
def test_cpu_limit_reads_cgroup_v2_then_v1(tmp_path: Path, v2, v1, limit) -> None:
    assert workers.cpu_limit(cgroup(tmp_path, v2, v1)) == limit


def test_a_configured_count_wins(tmp_path: Path) -> None:
    assert workers.count(3, cgroup(tmp_path, "100000 100000")) == 3


def test_no_limit_means_one_worker(tmp_path: Path) -> None:
    assert workers.count(0, cgroup(tmp_path, "max 100000")) == 1


@pytest.mark.parametrize(("quota", "expected"), [(150000, 1), (200000, 2), (6400000, 64)])
def test_one_worker_per_whole_cpu_of_the_limit(tmp_path: Path, quota: int, expected: int) -> None:
    cpus = len(os.sched_getaffinity(0))
    assert workers.count(0, cgroup(tmp_path, f"{quota} 100000")) == min(expected, cpus, workers.MAX_AUTO)


def test_a_negative_count_is_refused_naming_the_setting(tmp_path: Path) -> None:
    secrets = make_secrets(tmp_path / "secrets")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CSM_")}, **secrets.env(), "CSM_WORKERS": "-1"}
    done = subprocess.run(
        [sys.executable, "-m", "csm", "check-config"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "CSM_WORKERS" in done.stderr, done.stderr


# ---------------------------------------------------------------- two workers, no Cassandra


def children(pid: int) -> set[int]:
    """The worker processes of ``pid`` (multiprocessing's resource tracker is a child too)."""
    pids = {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    return {p for p in pids if b"spawn_main" in _cmdline(p)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("workers")
    secrets: Secrets = make_secrets(directory / "secrets")
    env = {**secrets.env(), "CSM_CASSANDRA_PORT": str(free_port()), "CSM_WORKERS": "2", "CSM_SHUTDOWN_TIMEOUT": "5"}
    service = Service(env, directory / "csm.log")
    try:
        service.wait_for("/health/live", 200, timeout=60)
        until("two workers", lambda: len(children(service.process.pid)) == 2, timeout=60, interval=0.2)
        yield service
    finally:
        service.stop()


def unauthorized(url: str, count: int) -> list[int]:
    """``count`` GETs of a protected route without a token, each on a new connection, 8 at a time."""
    statuses: list[int] = []

    def send(share: int) -> None:
        for _ in range(share):
            statuses.append(httpx.get(f"{url}/v1/authorities", timeout=10).status_code)

    threads = [threading.Thread(target=send, args=(count // 8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


SAMPLE = 'csm_http_requests_total{method="GET",route="/v1/authorities",status="401"}'


def served_by(service: Service) -> set[int]:
    return {r["process"] for r in service.log_records() if r.get("path") == "/v1/authorities"}


def test_both_workers_answer_and_the_metrics_count_every_request(pair: Service) -> None:
    before = metric(pair.client.get("/metrics").text, SAMPLE)
    assert unauthorized(pair.url, 200) == [401] * 200
    assert served_by(pair) == children(pair.process.pid), "each worker served some of the 200 requests"
    assert metric(pair.client.get("/metrics").text, SAMPLE) == before + 200


def test_the_build_and_readiness_are_exposed_across_workers(pair: Service) -> None:
    page = pair.client.get("/metrics").text
    assert "csm_build_info{" in page and metric(page, "csm_ready") == 0.0, page[:2000]


def test_a_killed_worker_is_replaced_and_its_counts_are_kept(pair: Service) -> None:
    unauthorized(pair.url, 40)
    counted = metric(pair.client.get("/metrics").text, SAMPLE)
    victim = min(children(pair.process.pid))
    os.kill(victim, signal.SIGKILL)
    until(
        "a replacement worker",
        lambda: victim not in children(pair.process.pid) and len(children(pair.process.pid)) == 2,
        timeout=60,
        interval=0.2,
    )
    pair.wait_for("/health/live", 200, timeout=30)
    page = pair.client.get("/metrics").text
    assert metric(page, SAMPLE) == counted, "the killed worker's requests are still counted"
    assert metric(page, "csm_http_requests_in_progress") == 1.0, "only this scrape is in progress"


def test_sigterm_stops_every_worker_and_exits_0(tmp_path: Path) -> None:
    secrets = make_secrets(tmp_path / "secrets")
    env = {**secrets.env(), "CSM_CASSANDRA_PORT": str(free_port()), "CSM_WORKERS": "2", "CSM_SHUTDOWN_TIMEOUT": "5"}
    service = Service(env, tmp_path / "csm.log")
    try:
        service.wait_for("/health/live", 200, timeout=60)
        until("two workers", lambda: len(children(service.process.pid)) == 2, timeout=60, interval=0.2)
        pids = children(service.process.pid)
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=60) == 0
    finally:
        service.stop()
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids), "no worker outlives the parent"
    shutdowns = [r for r in service.log_records() if r["message"] == "Application shutdown complete."]
    assert {r["process"] for r in shutdowns} == pids, json.dumps(shutdowns)
