"""Three-node Cassandra 5.0 cluster cases: replication factor 3, LOCAL_QUORUM, a steady issue-and-read
load through a real ``csm serve``, and faults on real nodes (cassandra/run on the host JDK, one loopback
alias each: 127.0.0.51-53, so the cluster runs beside the host Cassandra on 127.0.0.1).

    .venv/bin/python -m reliability.cluster [--keep]     # writes build/reliability/cluster-report.md

Cases: one node killed with kill -9 (no request fails, every acknowledged certificate reads back);
the node returns and catches up (hints: every certificate issued while it was down reads back from that
node alone at ONE); a rolling restart of the three (no request fails); two nodes down (writes and
LOCAL_QUORUM reads answer a JSON 503, never a 500 or a hang; the service recovers by itself when one
returns). The nodes run without logins (AllowAllAuthenticator): with system_auth at RF 1 a login would
depend on the one node holding the role, which is not what these cases are about.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.net import free_port
from harness.poll import wait_for, within
from harness.service_secrets import write_service_secrets
from reliability import load as L
from reliability.report import CaseResult, write
from reliability.stack import Poller

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "reliability"
NODES = ("127.0.0.51", "127.0.0.52", "127.0.0.53")
VERSION = "5.0.9"
KEYSPACE = "csm_cluster"

SEEDS_NOT_SEEN = "Unable to contact any seeds"


class Unavailable(Exception):
    """The cluster cannot be started here (no JDK, no Maven, ...)."""


@dataclass
class Cluster:
    """Three cassandra/run nodes forming one cluster; node 0 is the seed."""

    home: Path = ROOT / ".local" / "cassandra-cluster"
    heap: str = "512M"

    def env(self, index: int) -> dict[str, str]:
        return {
            **os.environ,
            "CASSANDRA_VERSION": VERSION,
            "CASSANDRA_HOST": NODES[index],
            "CASSANDRA_SEEDS": f"{NODES[0]}:7000",
            "CASSANDRA_RING_SLOT": f"{index + 1}/{len(NODES)}",
            "CASSANDRA_CLUSTER_NAME": "csm-three",
            "CASSANDRA_AUTH": "none",
            "CASSANDRA_INSTANCE_DIR": str(self.home / f"node{index + 1}"),
            "CASSANDRA_HEAP": self.heap,
        }

    def run(self, index: int, command: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / "cassandra" / "run"), command],
            env=self.env(index),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, index: int) -> float:
        started = time.monotonic()
        result = self.run(index, "start")
        if result.returncode != 0 and SEEDS_NOT_SEEN in result.stderr:
            # A joining node checks that it has heard from a seed once, early; on a busy machine the
            # seed's first gossip reply can come a moment later (it did in a CI run: "now part of the
            # cluster" 0.1 s after the refusal). A second start bootstraps again from the start.
            print(
                f"node {index + 1} ({NODES[index]}): {SEEDS_NOT_SEEN} at its first start; starting it again", flush=True
            )
            result = self.run(index, "start")
        if result.returncode != 0:
            raise Unavailable(f"node {index + 1} ({NODES[index]}) did not start:\n{result.stderr[-2000:]}")
        return time.monotonic() - started

    def running(self, index: int) -> bool:
        return self.run(index, "status", timeout=30).returncode == 0

    def up(self) -> None:
        """Starts the nodes that are not running, one at a time (nodes join a ring one by one)."""
        for index in range(len(NODES)):
            if not self.running(index):
                self.start(index)

    def stop(self, index: int) -> None:
        self.run(index, "stop")

    def kill(self, index: int) -> None:
        self.run(index, "kill")

    def down(self) -> None:
        for index in reversed(range(len(NODES))):
            self.stop(index)


@dataclass
class Csm:
    """``csm serve`` on the host against the cluster: RF 3, LOCAL_QUORUM (the service's only level)."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(32))

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        secrets_dir = self.directory / "secrets"
        secrets_dir.mkdir(exist_ok=True)
        write_service_secrets(secrets_dir, "admin", token=self.token)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSM_")}
        env.update(
            {
                "CSM_SECRETS_DIR": str(secrets_dir),
                "CSM_HOST": "127.0.0.1",
                "CSM_PORT": str(self.port),
                "CSM_CASSANDRA_CONTACT_POINTS": ",".join(NODES),
                "CSM_CASSANDRA_KEYSPACE": KEYSPACE,
                "CSM_CASSANDRA_REPLICATION_FACTOR": "3",
                "CSM_READINESS_INTERVAL": "1",
            }
        )
        log = (self.directory / "csm.log").open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "csm", "serve"], env=env, stdout=log, stderr=log)
        process = self.process
        wait_for(f"{self.url}/health/ready", 200, 120, interval=0.2, give_up=lambda: process.poll() is not None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> L.Target:
        return L.Target(self.url, self.token)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Acknowledged:
    """An issue-and-read operation that remembers every certificate the service acknowledged (201)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.bad: list[str] = []  # answers that are neither success nor a JSON 503
        self._lock = threading.Lock()

    async def __call__(self, client: httpx.AsyncClient, fixtures: L.Fixtures, record: L.Record) -> None:
        started, clock = time.time(), time.perf_counter()
        try:
            response = await client.post(
                "/v1/certificates",
                json={
                    "authority_id": fixtures.authority_id,
                    "common_name": fixtures.next_name(),
                    "key_algorithm": "ecdsa-p256",
                    "validity_days": 30,
                },
                headers=fixtures.target.auth,
            )
        except httpx.HTTPError as error:
            record("issue", started, time.perf_counter() - clock, None, error, (201,))
            with self._lock:
                self.bad.append(f"issue: {type(error).__name__}")
            return
        record("issue", started, time.perf_counter() - clock, response, None, (201,))
        self._judge("issue", response, 201)
        if response.status_code != 201:
            return
        issued = response.json()["id"]
        with self._lock:
            self.ids.append(issued)
        started, clock = time.time(), time.perf_counter()
        try:
            back = await client.get(f"/v1/certificates/{issued}", headers=fixtures.target.auth)
        except httpx.HTTPError as error:
            record("read", started, time.perf_counter() - clock, None, error, (200,))
            return
        record("read", started, time.perf_counter() - clock, back, None, (200,))
        self._judge("read", back, 200)

    def _judge(self, op: str, response: httpx.Response, ok: int) -> None:
        if response.status_code == ok:
            return
        json_503 = (
            response.status_code == 503
            and response.headers.get("content-type", "").startswith("application/json")
            and "detail" in response.json()
        )
        if not json_503:
            with self._lock:
                self.bad.append(f"{op}: {response.status_code} {response.text[:120]}")


def read_back(csm: Csm, ids: list[str]) -> list[str]:
    """The acknowledged certificates that do not read back (200) through the service."""
    missing = []
    with httpx.Client(base_url=csm.url, headers=csm.target.auth, timeout=10) as client:
        for certificate_id in ids:
            if client.get(f"/v1/certificates/{certificate_id}").status_code != 200:
                missing.append(certificate_id)
    return missing


def _not_ready(watch: Poller) -> tuple[int, int]:
    """(polls that were not 200, polls) of a readiness watch."""
    polls = list(watch.polls)
    return sum(status != 200 for _, status in polls), len(polls)


def _load(csm: Csm, fixtures: L.Fixtures, operation: Acknowledged, seconds: float) -> L.Load:
    return L.Load(fixtures, operation, concurrency=4, rate=40, max_seconds=seconds, timeout=15).start()


def _count(result: CaseResult, load: L.Load) -> L.Stats:
    stats = load.stop()
    result.count(stats)
    result.figure("p99 ms", stats.p99_ms)
    return stats


def node_killed(cluster: Cluster, csm: Csm, fixtures: L.Fixtures, window: float) -> tuple[CaseResult, list[str]]:
    """kill -9 of node 3 under load: the service stays ready, no request fails, every acknowledged
    certificate reads back. Returns the certificates acknowledged while node 3 was down."""
    result = CaseResult("cluster-kill9", "3 nodes: one node killed (kill -9)")
    started = time.monotonic()
    operation = Acknowledged()
    with Poller(f"{csm.url}/health/ready", interval=0.25) as watch:
        load = _load(csm, fixtures, operation, window * 3)
        time.sleep(window)
        cluster.kill(2)
        before_kill = len(operation.ids)
        time.sleep(window * 2)
        _count(result, load)
    during = operation.ids[before_kill:]
    missing = read_back(csm, operation.ids)
    result.figure("acknowledged", len(operation.ids))
    result.figure("issued while down", len(during))
    result.check("no request failed", result.failed == 0, "; ".join(operation.bad[:5]))
    not_ready, polls = _not_ready(watch)
    result.check("the service stayed ready", not_ready == 0, f"{not_ready} of {polls} polls not 200")
    result.check("every acknowledged certificate reads back", not missing, f"{len(missing)} missing")
    result.seconds = time.monotonic() - started
    return result, during


def node_catches_up(cluster: Cluster, csm: Csm, issued_while_down: list[str], timeout: float) -> CaseResult:
    """Node 3 returns; the certificates written while it was down reach it (hinted handoff): each reads
    back from node 3 alone at consistency ONE."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile
    from cassandra.cluster import Cluster as Driver
    from cassandra.policies import WhiteListRoundRobinPolicy
    from cassandra.query import SimpleStatement

    from cassandra import ConsistencyLevel

    result = CaseResult("cluster-catch-up", "3 nodes: the killed node returns and catches up")
    started = time.monotonic()
    result.figure("node start s", cluster.start(2))
    back = time.monotonic()
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([NODES[2]]), consistency_level=ConsistencyLevel.ONE
    )
    driver = Driver([NODES[2]], execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    lagging = list(issued_while_down)
    try:
        session = driver.connect(KEYSPACE)
        query = SimpleStatement("SELECT id FROM certificates WHERE id = %s")
        import uuid

        def caught_up() -> bool:
            nonlocal lagging
            lagging = [i for i in lagging if session.execute(query, (uuid.UUID(i),)).one() is None]
            return not lagging

        within("every certificate on the returned node", caught_up, timeout - (time.monotonic() - back))
    finally:
        driver.shutdown()
    result.recovery_s, result.recovery_of = time.monotonic() - back, "all hints on the node"
    result.figure("certificates to catch up", len(issued_while_down))
    result.check("certificates were written while it was down", bool(issued_while_down))
    result.check(
        "every one reads back from the returned node alone at ONE",
        not lagging,
        f"{len(lagging)} still missing after {timeout:g} s",
    )
    result.seconds = time.monotonic() - started
    return result


def rolling_restart(cluster: Cluster, csm: Csm, fixtures: L.Fixtures) -> CaseResult:
    """Each node in turn stopped (SIGTERM, drain) and started again under load: no request fails."""
    result = CaseResult("cluster-rolling", "3 nodes: rolling restart, one node at a time")
    started = time.monotonic()
    operation = Acknowledged()
    with Poller(f"{csm.url}/health/ready", interval=0.25) as watch:
        load = _load(csm, fixtures, operation, 1200)
        time.sleep(3)
        restarts = []
        for index in range(len(NODES)):
            t = time.monotonic()
            cluster.stop(index)
            cluster.start(index)
            restarts.append(time.monotonic() - t)
            time.sleep(3)
        _count(result, load)
    missing = read_back(csm, operation.ids)
    result.figure("restart s per node", "/".join(f"{r:.0f}" for r in restarts))
    result.figure("acknowledged", len(operation.ids))
    result.check("no request failed", result.failed == 0, "; ".join(operation.bad[:5]))
    not_ready, polls = _not_ready(watch)
    result.check("the service stayed ready", not_ready == 0, f"{not_ready} of {polls} polls not 200")
    result.check("every acknowledged certificate reads back", not missing, f"{len(missing)} missing")
    result.seconds = time.monotonic() - started
    return result


def two_down(cluster: Cluster, csm: Csm, fixtures: L.Fixtures, window: float) -> CaseResult:
    """Nodes 2 and 3 killed: LOCAL_QUORUM cannot be met, so writes and reads answer a JSON 503 (never a
    500, never a hang); node 2 back: the service serves again by itself."""
    result = CaseResult("cluster-two-down", "3 nodes: two nodes down, then one back")
    started = time.monotonic()
    cluster.kill(1)
    cluster.kill(2)
    operation = Acknowledged()
    load = _load(csm, fixtures, operation, window)
    time.sleep(window)
    stats = load.stop()
    result.count(stats)
    statuses = sorted({s.status for s in load.snapshot()}, key=str)
    slowest = max((s.seconds for s in load.snapshot()), default=0.0)
    result.figure("answers", ",".join(str(s) for s in statuses))
    result.figure("slowest s", slowest)
    result.check(
        "writes fail with a JSON 503, never a 500 or a transport error",
        not operation.bad and statuses == [503],
        "; ".join(operation.bad[:5]) or str(statuses),
    )
    with httpx.Client(base_url=csm.url, headers=csm.target.auth, timeout=15) as client:
        reads = [client.get(f"/v1/certificates/{fixtures.certificate_ids[0]}") for _ in range(5)]
    result.figure("reads", ",".join(str(r.status_code) for r in reads))
    result.check(
        "LOCAL_QUORUM reads answer a JSON 503 too",
        all(r.status_code == 503 and "detail" in r.json() for r in reads),
        str([r.status_code for r in reads]),
    )
    result.check("no request hangs (each answered within 10 s)", slowest < 10.0, f"{slowest:.1f} s")
    t = time.monotonic()
    cluster.start(1)
    node_back = time.monotonic()
    with httpx.Client(base_url=csm.url, headers=csm.target.auth, timeout=10) as client:
        body = {"authority_id": fixtures.authority_id, "common_name": "after-two-down", "key_algorithm": "ecdsa-p256"}
        ok = bool(
            within(
                "a 201 after a node returns",
                lambda: client.post("/v1/certificates", json=body).status_code == 201,
                60,
                0.5,
            )
        )
    result.recovery_s, result.recovery_of = time.monotonic() - node_back, "first 201 after node 2 accepted CQL"
    result.figure("node start s", node_back - t)
    result.check("writes succeed again without a restart once a node returns", ok)
    result.check("the service process stayed up", csm.process is not None and csm.process.poll() is None)
    cluster.start(2)
    result.seconds = time.monotonic() - started
    return result


def run_all(workdir: Path, window: float = 10.0) -> Iterator[CaseResult]:
    """Starts the cluster and the service, runs the four cases in order, stops what it started."""
    cluster = Cluster()
    was_up = all(cluster.running(i) for i in range(len(NODES)))
    cluster.up()
    csm = Csm(workdir)
    try:
        csm.start()
        fixtures = L.prepare(csm.target)
        kill_result, during = node_killed(cluster, csm, fixtures, window)
        yield kill_result
        yield node_catches_up(cluster, csm, during, timeout=120)
        yield rolling_restart(cluster, csm, fixtures)
        yield two_down(cluster, csm, fixtures, window)
    finally:
        csm.stop()
        if not was_up:
            cluster.down()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the cluster running afterwards")
    args = parser.parse_args()
    started = time.time()
    results = []
    for result in run_all(BUILD / "cluster"):
        print(
            f"{result.case}: {'pass' if result.passed else 'FAIL'} sent {result.sent} failed {result.failed} "
            f"{result.figures}",
            flush=True,
        )
        results.append(result)
    write(results, BUILD / "cluster-report.md", "cluster", started)
    if not args.keep:
        Cluster().down()
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
