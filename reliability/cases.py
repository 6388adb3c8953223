"""The fault and load cases. Each takes the ``csmrel`` stack and a profile, runs against real
containers with bounded loops and time limits, and returns a ``CaseResult`` with its figures and
the checks the issue asks for (thresholds from issue 8). A case leaves the stack's csm service as
the product defines it (it recreates it when it changed it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from reliability import load as L
from reliability.report import CaseResult
from reliability.stack import (
    FAULTS,
    ROOT,
    Event,
    Events,
    Poller,
    Stack,
    inspect,
    logs,
    memory_mib,
    run,
    wait_for,
)

BUILD = ROOT / "build" / "reliability"


@dataclass(frozen=True)
class Profile:
    name: str
    outage_seconds: float = 30.0  # the issue's figure
    steady_rate: float = 10.0  # requests/s of the background load during faults
    load_seconds: float = 30.0
    load_concurrency: int = 8
    restart_window: float = 20.0  # how long a crash-looping container is watched
    memory_window: float = 45.0
    fuzz_examples: int = 10
    fuzz_timeout: float = 600.0


PROFILES = {
    "ci": Profile("ci"),
    "full": Profile("full", load_seconds=60.0, restart_window=40.0, fuzz_examples=25),
    "soak": Profile("soak", load_seconds=600.0, restart_window=40.0, fuzz_examples=50, fuzz_timeout=1500.0),
}

# The thresholds of issue 8.
READY_AFTER_CASSANDRA_S = 5.0
SWARM_AVAILABILITY = 0.999
DOCKER_FIRST_DELAY, DOCKER_MAX_DELAY, DOCKER_RESET_AFTER = 0.1, 60.0, 10.0


def _api_mix() -> L.Operation:
    return L.mix((L.issue_and_read, 1), (L.read, 2))


# ---------------------------------------------------------------- Cassandra outage


def _cql_answers(port: int, password: str) -> bool:
    """A real CQL login and query on the published loopback port."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    cluster = Cluster(
        ["127.0.0.1"],
        port=port,
        auth_provider=PlainTextAuthProvider("cassandra", password),
        protocol_version=5,
        connect_timeout=2,
        control_connection_timeout=2,
    )
    try:
        session = cluster.connect()
        session.execute("SELECT release_version FROM system.local", timeout=2)
        return True
    except Exception:  # any failure means "not back yet"
        return False
    finally:
        cluster.shutdown()


def cassandra_outage(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("cassandra-outage", f"Cassandra stopped {profile.outage_seconds:.0f} s under load")
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    target = stack.target()
    fixtures = L.prepare(target, certificates=10)
    with httpx.Client(base_url=target.url, headers=target.auth, timeout=30) as client:
        before = {cid: client.get(f"/v1/certificates/{cid}").json() for cid in fixtures.certificate_ids}
    cassandra = stack.container("cassandra")
    password = (stack.secrets / "cassandra_superuser_password").read_text().strip()
    budget = profile.outage_seconds + 600
    probes = L.Load(fixtures, L.live, concurrency=2, rate=profile.steady_rate, max_seconds=budget)
    api = L.Load(fixtures, _api_mix(), concurrency=4, rate=profile.steady_rate, max_seconds=budget, timeout=15)
    with Poller(f"{target.url}/health/ready", interval=0.1, max_seconds=budget) as ready, probes, api:
        time.sleep(5)
        stop_at = time.time()
        run("docker", "stop", "-t", "60", cassandra, timeout=120)
        down_at = time.time()
        time.sleep(max(0.0, profile.outage_seconds - (time.time() - down_at)))
        start_at = time.time()
        run("docker", "start", cassandra)
        back_at = None
        deadline = time.monotonic() + 480
        while time.monotonic() < deadline:
            if _cql_answers(stack.cql_port, password):
                back_at = time.time()
                break
            time.sleep(0.2)
        ready_at = ready.first(200, after=back_at) if back_at else None
        wait_deadline = time.monotonic() + 60
        while back_at and ready_at is None and time.monotonic() < wait_deadline:
            time.sleep(0.1)
            ready_at = ready.first(200, after=back_at)
        time.sleep(10)  # steady load after the recovery
        probes.stop()
        api.stop()
    result.seconds = time.time() - stop_at
    live, calls = probes.stats(), api.stats()
    result.count(calls)
    result.figure("live probes ok", f"{live.sent - live.failed}/{live.sent}")
    result.figure("Cassandra stopped (s)", start_at - down_at)
    result.figure("docker stop took (s)", down_at - stop_at)
    result.check(
        "live never fails", live.sent > 0 and live.failed == 0, f"{live.failed} of {live.sent} failed: {live.errors}"
    )
    if back_at is None:
        result.check("Cassandra came back", False, "no CQL login within 480 s of docker start")
        return result
    result.figure("Cassandra restart to CQL (s)", back_at - start_at)
    not_ready_at = ready.first(503, after=stop_at)
    if not_ready_at is not None:
        result.figure("ready 503 after the stop began (s)", not_ready_at - stop_at)
    # The window ends at `docker start`: from then on the service's own driver may reach Cassandra
    # before this test's fresh CQL login does, so a 200 there is a recovery, not a flap.
    during = ready.between((not_ready_at or down_at), start_at)
    flaps = [f"{status} at +{at - stop_at:.1f} s" for at, status in during if status != 503]
    result.check(
        "ready is 503 during the outage",
        not_ready_at is not None and bool(during) and not flaps,
        f"{len(during)} polls from the first 503 to docker start (+{start_at - stop_at:.1f} s); not 503: {flaps[:10]}",
    )
    if ready_at is None:
        result.check(
            f"ready within {READY_AFTER_CASSANDRA_S:g} s of Cassandra's return",
            False,
            "not ready within 60 s of the first CQL login",
        )
    else:
        result.recovery_s, result.recovery_of = ready_at - back_at, "ready after CQL is back"
        result.check(
            f"ready within {READY_AFTER_CASSANDRA_S:g} s of Cassandra's return",
            ready_at - back_at <= READY_AFTER_CASSANDRA_S,
            f"{ready_at - back_at:.2f} s",
        )
    samples = api.snapshot()
    bad = [s for s in samples if s.status is None or (s.status >= 500 and s.status != 503)]
    result.check(
        "API calls during the outage answer 503, never another 5xx or a dropped connection",
        not bad,
        f"{len(bad)} such: {L.Stats.of(bad).errors if bad else ''}",
    )
    if ready_at is not None:
        after = [s for s in samples if s.started >= ready_at + 2]
        result.check(
            "API calls succeed again after the recovery",
            after and all(s.ok for s in after),
            f"{sum(not s.ok for s in after)} of {len(after)} failed",
        )
    with httpx.Client(base_url=target.url, headers=target.auth, timeout=30) as client:
        lost = [
            cid
            for cid, body in before.items()
            if (got := client.get(f"/v1/certificates/{cid}")).status_code != 200
            or got.json()["certificate_pem"] != body["certificate_pem"]
            or got.json()["serial_number"] != body["serial_number"]
        ]
    result.check(
        "no certificate written before the outage is lost",
        not lost,
        f"{len(before) - len(lost)} of {len(before)} read back identical",
    )
    return result


# ---------------------------------------------------------------- SIGTERM


def _in_progress(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("csm_http_requests_in_progress "):
            return float(line.split()[1])
    raise RuntimeError("no csm_http_requests_in_progress metric")


def sigterm(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("sigterm", "SIGTERM to the CSM container under load")
    cid = stack.restore_csm()
    target = stack.target()
    fixtures = L.prepare(target, certificates=3)
    grace = int(inspect(cid)["Config"].get("StopTimeout") or 10)
    began = time.time()
    slow_outcomes: list[object] = []

    def slow_issue() -> None:  # an RSA-3072 key made by the service: seconds of work in flight
        body = {
            "authority_id": fixtures.authority_id,
            "common_name": "drain.reliability.test",
            "key_algorithm": "rsa-3072",
        }
        try:
            with httpx.Client(base_url=target.url, headers=target.auth, timeout=60) as client:
                slow_outcomes.append(client.post("/v1/certificates", json=body).status_code)
        except httpx.HTTPError as error:
            slow_outcomes.append(repr(error))

    load = L.Load(
        fixtures, _api_mix(), concurrency=8, rate=3 * profile.steady_rate, max_seconds=180, keepalive=False, timeout=60
    )
    with load:
        time.sleep(5)
        threads = [threading.Thread(target=slow_issue) for _ in range(4)]
        for thread in threads:
            thread.start()
        # One reading decides and is reported: a second read can come after fast RSA issues ended.
        deadline = time.monotonic() + 30
        in_flight_metric = _in_progress(target.url) - 1
        while in_flight_metric < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
            in_flight_metric = _in_progress(target.url) - 1
        signal_at = time.time()
        stopped = run("docker", "stop", "-t", str(grace), cid, timeout=grace + 60)
        exited_at = time.time()
        for thread in threads:
            thread.join(90)
        time.sleep(1)
        load.stop()
    result.seconds = time.time() - began
    state = inspect(cid)["State"]
    samples = load.snapshot()
    before = [s for s in samples if s.started < signal_at]
    in_flight = [s for s in before if s.ended > signal_at]
    result.count(L.Stats.of(before))
    result.recovery_s, result.recovery_of = exited_at - signal_at, "SIGTERM to exit"
    result.figure("exit code", state["ExitCode"])
    result.figure("grace (s)", grace)
    result.figure(
        "in flight at SIGTERM",
        f"{len(in_flight)} load + {len(threads)} RSA-3072 issues (server gauge {in_flight_metric:.0f})",
    )
    result.figure("refused after SIGTERM", sum(1 for s in samples if s.started >= signal_at and not s.ok))
    result.check(
        "the service had requests in flight when the signal came",
        in_flight_metric >= 4 and len(in_flight) >= 1,
        f"gauge {in_flight_metric:.0f}, load requests spanning the signal {len(in_flight)}",
    )
    result.check(
        "no in-flight request fails",
        all(s.ok for s in in_flight) and slow_outcomes == [201] * len(threads),
        f"load {sum(not s.ok for s in in_flight)} failed of {len(in_flight)}; slow issues {slow_outcomes}",
    )
    result.check(
        "no request sent before the signal fails",
        all(s.ok for s in before),
        f"{sum(not s.ok for s in before)} of {len(before)} failed: {L.Stats.of(before).errors}",
    )
    result.check(
        "exit code 0",
        state["ExitCode"] == 0 and not state["OOMKilled"],
        f"exit {state['ExitCode']}, docker stop said {stopped.stdout.strip()[:12]}",
    )
    result.check(
        "exits within its grace period", exited_at - signal_at < grace, f"{exited_at - signal_at:.2f} s of {grace} s"
    )
    stack.restore_csm()
    return result


# ---------------------------------------------------------------- restarts and their backoff


def docker_delays(runs: list[float]) -> list[float]:
    """The delays Docker's restart manager waits before each restart, given how long each run that
    ended lasted: 100 ms doubling up to 1 min, back to 100 ms after a run of 10 s or more."""
    delays: list[float] = []
    delay = 0.0
    for lasted in runs:
        if lasted >= DOCKER_RESET_AFTER:
            delay = 0.0
        delay = DOCKER_FIRST_DELAY if delay == 0 else min(delay * 2, DOCKER_MAX_DELAY)
        delays.append(delay)
    return delays


@dataclass
class Restarts:
    starts: list[float]
    deaths: list[Event]
    runs: list[float]  # per death: how long that run lasted (start to die); inf when it began before the watch
    gaps: list[float]  # per restart: die to the next start, the policy's delay plus the engine's own time

    @classmethod
    def of(cls, events: Events) -> Restarts:
        starts = sorted(e.time for e in events.of("start"))
        deaths = sorted(events.of("die"), key=lambda e: e.time)
        runs, gaps = [], []
        for death in deaths:
            began = max((t for t in starts if t <= death.time), default=None)
            following = min((t for t in starts if t > death.time), default=None)
            if following is None:
                break
            runs.append(death.time - began if began is not None else float("inf"))
            gaps.append(following - death.time)
        return cls(starts, deaths, runs, gaps)

    def describe(self) -> str:
        return ", ".join(f"{g:.1f}" for g in self.gaps) or "none"


def check_backoff(result: CaseResult, restarts: Restarts, window: float) -> None:
    """Restarted by the policy, with its backoff: each delay at least Docker's (minus 20% for clock
    noise), and no more restarts in the window than that backoff allows (a tight loop would
    restart once per run)."""
    expected = docker_delays(restarts.runs)
    result.figure("restarts", len(restarts.gaps))
    result.figure("restart delays (s)", restarts.describe())
    result.check(
        "the orchestrator restarts it (restart policy)",
        len(restarts.gaps) >= 3,
        f"{len(restarts.gaps)} restarts in {window:.0f} s",
    )
    short = [(gap, want) for gap, want in zip(restarts.gaps, expected, strict=True) if gap < 0.8 * want]
    result.check(
        "backoff holds: every delay at least Docker's doubling one (0.1 s x 2^n, reset after 10 s up)",
        not short and bool(restarts.gaps),
        f"delays {restarts.describe()} s; expected at least {', '.join(f'{e:.1f}' for e in expected)}",
    )
    known = [r for r in restarts.runs if r != float("inf")]
    mean_run = sum(known) / len(known) if known else 1.0
    allowed = _starts_with_backoff(mean_run, window)
    tight_loop = int(window / max(mean_run, 0.1)) + 1
    result.check(
        "no restart storm: no more starts than the backoff allows",
        len(restarts.starts) <= allowed + 1,
        f"{len(restarts.starts)} starts in {window:.0f} s (runs of {mean_run:.1f} s); with the backoff at "
        f"most {allowed}, a tight loop would make {tight_loop}",
    )


def _starts_with_backoff(run_seconds: float, window: float) -> int:
    """How many times a container whose runs last ``run_seconds`` starts within ``window`` under
    Docker's backoff (the first start included)."""
    elapsed, starts, delay = 0.0, 0, 0.0
    while elapsed < window:
        starts += 1
        elapsed += run_seconds
        delay = (
            DOCKER_FIRST_DELAY if delay == 0 or run_seconds >= DOCKER_RESET_AFTER else min(2 * delay, DOCKER_MAX_DELAY)
        )
        elapsed += delay
    return starts


# ---------------------------------------------------------------- secrets


def secret_fault(stack: Stack, profile: Profile, kind: str) -> CaseResult:
    """A secret file missing (not given to the container) or unreadable (owned by root, mode 0600)."""
    result = CaseResult(f"secret-{kind}", f"A secret file {kind} (csm_master_key)")
    files: tuple[Path, ...] = ()
    env: dict[str, str] = {}
    broken: Path | None = None
    if kind == "missing":
        files = (FAULTS / "missing-secret.yaml",)
    elif kind == "unreadable":
        broken = stack.fault_secrets("unreadable")
        os.chown(broken / "csm_master_key", 0, 0)
        (broken / "csm_master_key").chmod(0o600)
        env = {"CSM_SECRETS_DIR": str(broken)}
    else:
        raise ValueError(kind)
    began = time.time()
    try:
        cid = stack.recreate_csm(*files, wait=False, **env)
        with Events(f"container={cid}", since=began - 1) as events:
            time.sleep(profile.restart_window)
        restarts = Restarts.of(events)
        text = logs(cid, tail=200)
        state = inspect(cid)["State"]
    finally:
        stack.restore_csm()
        if broken is not None:
            shutil.rmtree(broken, ignore_errors=True)
    result.seconds = time.time() - began
    codes = sorted({d.attributes.get("exitCode", "?") for d in restarts.deaths})
    result.figure("exit codes", ",".join(codes) or "none")
    result.check("exit code 2 (invalid configuration), every time", codes == ["2"], f"exit codes {codes}")
    named = "CSM_MASTER_KEY (master_key)" in text
    result.check(
        "a clear error naming the setting, no traceback", named and "Traceback" not in text, _first_lines(text)
    )
    result.check(
        "never serves",
        state["Health"]["Status"] != "healthy" if state.get("Health") else True,
        f"health {state.get('Health', {}).get('Status')}",
    )
    check_backoff(result, restarts, profile.restart_window)
    return result


def _first_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(lines[:count])[:400]


# ---------------------------------------------------------------- memory


def _list_page(client: httpx.AsyncClient, fixtures: L.Fixtures, record: L.Record):  # type: ignore[no-untyped-def]
    return L._timed(
        client,
        record,
        "list-500",
        (200,),
        "GET",
        "/v1/certificates",
        params={"limit": 500, "authority_id": fixtures.authority_id},
        headers=fixtures.target.auth,
    )


def ensure_certificates(target: L.Target, name: str, count: int) -> str:
    """An authority called ``name`` with at least ``count`` certificates (kept in the stack's volume)."""
    with httpx.Client(base_url=target.url, headers=target.auth, timeout=60) as client:
        found = [a for a in client.get("/v1/authorities").json()["items"] if a["name"] == name]
        authority_id = found[0]["id"] if found else client.post("/v1/authorities", json={"name": name}).json()["id"]
        page = client.get("/v1/certificates", params={"authority_id": authority_id, "limit": 500}).json()
        have = len(page["items"])
    missing = max(0, count - have)
    if missing:
        fixtures = L.Fixtures(target, authority_id=authority_id)
        issued = L.Load(fixtures, L.issue_and_read, concurrency=6, max_seconds=600, timeout=60)
        issued.start()
        while sum(1 for s in issued.snapshot() if s.op == "issue" and s.ok) < missing:
            if not issued.running:
                break
            time.sleep(0.5)
        issued.stop()
    return authority_id


def memory_limit(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("memory", "Memory limit exceeded under a large but valid load")
    cid = stack.restore_csm()
    target = stack.target()
    authority_id = ensure_certificates(target, "Reliability memory", 500)
    fixtures = L.prepare(target, certificates=1)
    heavy_fixtures = L.Fixtures(target, authority_id=authority_id)
    time.sleep(2)
    baseline = memory_mib(cid)
    limit = int(baseline) + 24
    # Lowered at run time (the kernel refuses a limit under the current use): the process now has
    # 24 MiB of headroom, which pages of 500 certificates, a few at a time, use up.
    run("docker", "update", "--memory", f"{limit}m", "--memory-swap", f"{limit}m", cid)
    began = time.time()
    probes = L.Load(
        fixtures,
        L.mix((L.live, 1), (L.read, 1)),
        concurrency=2,
        rate=profile.steady_rate,
        max_seconds=profile.memory_window + 240,
    )
    heavy = L.Load(heavy_fixtures, _list_page, concurrency=6, max_seconds=profile.memory_window, timeout=60)
    try:
        with Events(f"container={cid}", since=began - 1) as events, probes:
            heavy.start()
            deadline = time.monotonic() + profile.memory_window
            while time.monotonic() < deadline and len(events.of("die")) < 3:
                time.sleep(0.5)
            heavy.stop()
            heavy_stopped = time.time()
            ready_after = wait_for(f"{target.url}/health/ready", 200, timeout=180)
            ready_at = time.time()
            time.sleep(10)
            probes.stop()
        restarts = Restarts.of(events)
        ooms = events.of("oom")
        state = inspect(cid)
    finally:
        stack.restore_csm()
    result.seconds = time.time() - began
    result.count(probes.stats())
    heavy_stats = heavy.stats()
    result.figure("limit (MiB)", f"{limit} (use before: {baseline:.0f})")
    kills = [d for d in restarts.deaths if d.attributes.get("exitCode") == "137"]
    result.figure("OOM kills", f"{len(kills)} ({len(ooms)} oom events)")
    result.figure("heavy pages served", heavy_stats.sent - heavy_stats.failed)
    exit_codes = sorted({d.attributes.get("exitCode", "?") for d in restarts.deaths})
    result.check(
        "the kernel OOM-kills the process when the load exceeds the limit",
        len(ooms) >= 1 and len(kills) >= 1,
        f"{len(ooms)} oom events, exit codes {exit_codes}",
    )
    if len(restarts.gaps) >= 3:
        check_backoff(result, restarts, heavy_stopped - began)
    else:  # one or two kills: each was followed by a restart of the policy's
        result.figure("restarts", len(restarts.gaps))
        result.figure("restart delays (s)", restarts.describe())
        result.check(
            "the orchestrator restarts it (restart policy)",
            len(restarts.gaps) >= 1 and len(restarts.gaps) >= len(kills),
            f"{len(restarts.gaps)} restarts for {len(kills)} OOM kills, delays {restarts.describe()} s",
        )
    last_death = max((d.time for d in restarts.deaths), default=heavy_stopped)
    result.recovery_s, result.recovery_of = ready_at - last_death, "ready after the last OOM kill"
    result.figure("ready after the heavy load stopped (s)", ready_after)
    result.check(
        "the service recovers on its own (same limit, no operator action)",
        state["HostConfig"]["Memory"] == limit * 1024 * 1024 and state["State"]["Running"],
        f"ready {ready_at - last_death:.1f} s after the last kill; limit still {limit} MiB",
    )
    after = [s for s in probes.snapshot() if s.started >= ready_at]
    result.check(
        "requests succeed after the recovery",
        after and all(s.ok for s in after),
        f"{sum(not s.ok for s in after)} of {len(after)} failed",
    )
    return result


# ---------------------------------------------------------------- wrong image digest


def bad_digest_compose(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("bad-digest-compose", "Update to an unpullable image digest (Compose)")
    target = stack.target()
    fixtures = L.prepare(target, certificates=1)
    cid = stack.container("csm")
    started = inspect(cid)["State"]["StartedAt"]
    bad = stack.csm_image.split("@")[0] + "@sha256:" + "0" * 64
    with L.Load(
        fixtures, L.mix((L.live, 1), (L.read, 1)), concurrency=2, rate=2 * profile.steady_rate, max_seconds=300
    ) as load:
        time.sleep(3)
        began = time.time()
        update = stack.compose("up", "--detach", "--no-deps", "csm", check=False, timeout=240, CSM_IMAGE=bad)
        refused_after = time.time() - began
        time.sleep(3)
        load.stop()
    result.seconds = time.time() - began + 3
    result.count(load.stats())
    result.recovery_s, result.recovery_of = refused_after, "deploy refused after"
    after = inspect(stack.container("csm"))
    result.check(
        "the deploy fails", update.returncode != 0, f"exit {update.returncode}: {_first_lines(update.stderr, 2)}"
    )
    result.check(
        "the running container is untouched (same container, same start)",
        after["Id"].startswith(cid) and after["State"]["StartedAt"] == started and after["State"]["Running"],
        f"{after['Id'][:12]} started {after['State']['StartedAt']}",
    )
    result.check(
        "no request fails",
        load.stats().failed == 0 and load.stats().sent > 0,
        f"{load.stats().failed} of {load.stats().sent} failed",
    )
    return result


# ---------------------------------------------------------------- full tmpfs

FILL_TMP = r"""
import errno, os
written = 0
try:
    with open("/tmp/reliability-fill", "wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
            written += 65536
except OSError as error:
    code = error.errno
st = os.statvfs("/tmp")
print(code, written, st.f_bavail * st.f_frsize)
"""
UNFILL_TMP = 'import os; os.remove("/tmp/reliability-fill")'
# csm serve writes its probe file (csm/probe.py) once, at start, before any request: not a request path;
# with /tmp full at start the healthcheck reads the settings instead.
STARTUP_WRITERS = frozenset({"cli.py", "probe.py"})
WRITES_FILES = re.compile(r"\btempfile\b|['\"]/tmp|open\([^)]*['\"][wa]b?['\"]|write_(text|bytes)\(")


def tmpfs_full(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("tmpfs-full", "A full tmpfs /tmp")
    target = stack.target()
    fixtures = L.prepare(target, certificates=1)
    cid = stack.container("csm")
    before = inspect(cid)["State"]
    writers = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "app" / "src" / "csm").rglob("*.py"))
        if path.name not in STARTUP_WRITERS
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if WRITES_FILES.search(line)
    ]
    filled = run("docker", "exec", "--user", "65532:65532", cid, "/opt/venv/bin/python", "-c", FILL_TMP, timeout=120)
    code, written, free = (int(x) for x in filled.stdout.split())
    began = time.time()
    try:
        load = L.run_for(
            fixtures,
            L.mix((L.issue_and_read, 1), (L.read, 1), (L.live, 1), (L.ready, 1)),
            max(10.0, profile.load_seconds / 3),
            concurrency=4,
            rate=2 * profile.steady_rate,
        )
    finally:
        run("docker", "exec", "--user", "65532:65532", cid, "/opt/venv/bin/python", "-c", UNFILL_TMP, check=False)
    result.seconds = time.time() - began
    after = inspect(cid)["State"]
    stats = load.stats()
    result.count(stats)
    result.figure("/tmp filled", f"{written // 1024} KiB, {free} bytes free, errno {code}")
    result.check("/tmp is full (a write gets ENOSPC)", code == 28 and free == 0, f"errno {code}, {free} bytes free")
    result.check(
        "the process stays up",
        after["Running"] and after["StartedAt"] == before["StartedAt"] and after.get("Pid") == before.get("Pid"),
        f"started {after['StartedAt']}, pid {after.get('Pid')}",
    )
    result.check(
        "it serves the rest: no request fails",
        stats.sent > 0 and stats.failed == 0,
        f"{stats.failed} of {stats.sent} failed: {stats.errors}",
    )
    result.check("no request path writes to /tmp (app/src/csm scanned)", not writers, ", ".join(writers))
    result.notes.append(
        "No CSM request writes to /tmp: request bodies are JSON of at most 64 KiB read in memory, keys and "
        "certificates are made in memory and kept in Cassandra. So no request fails on a full /tmp, and "
        "the JSON 503 for ENOSPC in csm/api/errors.py (OSError handler) has no request that reaches it today."
    )
    return result


# ---------------------------------------------------------------- schemathesis

SCHEMATHESIS_CONFIG = ROOT / "reliability" / "schemathesis.toml"


def api_fuzz(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("schemathesis", "API robustness (schemathesis, OpenAPI)")
    target = stack.target()
    out = BUILD / "schemathesis"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    junit = out / "junit.xml"
    command = [
        str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "schemathesis"),
        "--config-file",
        str(SCHEMATHESIS_CONFIG),
        "run",
        f"{target.url}/openapi.json",
        "--max-examples",
        str(profile.fuzz_examples),
        "--seed",
        "8",
        "--workers",
        "1",
        "--no-color",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
    ]
    if not Path(command[0]).exists():
        command[0] = shutil.which("schemathesis") or command[0]
    began = time.time()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=profile.fuzz_timeout,
        cwd=ROOT,
        env={**os.environ, "CSM_RELIABILITY_TOKEN": target.token},
    )
    result.seconds = time.time() - began
    (out / "output.txt").write_text(done.stdout + done.stderr)
    generated = re.search(r"(\d+) generated", done.stdout)
    result.sent = int(generated.group(1)) if generated else 0
    failures: list[str] = []
    operations = 0
    if junit.is_file():
        for case in ElementTree.parse(junit).getroot().iter("testcase"):
            operations += 1
            for problem in [*case.iter("failure"), *case.iter("error")]:
                failures.append(
                    f"{case.get('name')}: {(problem.get('message') or '')} {_first_lines(problem.text or '', 6)}"
                )
    result.failed = len(failures)
    result.figure("operations", operations)
    result.figure("examples per operation", profile.fuzz_examples)
    summary = re.search(r"Test cases:\s*\n\s*(.+)", done.stdout)
    result.check(
        "schemathesis ran",
        done.returncode in (0, 1) and result.sent > 0,
        f"exit {done.returncode}; "
        + (summary.group(1).strip() if summary else _first_lines(done.stderr or done.stdout[-600:], 4)),
    )
    result.check(
        "no 5xx and every response matches the schema (status, content type, headers, body)",
        done.returncode == 0 and not failures,
        " | ".join(failures)[:1500],
    )
    result.notes.append(f"output in {out.relative_to(ROOT)}/output.txt; sent = test cases generated")
    return result


# ---------------------------------------------------------------- sustained load


def sustained_load(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("load", f"Sustained load: issue + read back, {profile.load_concurrency} clients")
    target = stack.target()
    fixtures = L.prepare(target, certificates=1)
    cid = stack.container("csm")
    memory_before = memory_mib(cid)
    load = L.run_for(fixtures, L.issue_and_read, profile.load_seconds, concurrency=profile.load_concurrency, timeout=30)
    memory_after = memory_mib(cid)
    stats = load.stats()
    issue, back = load.stats(["issue"]), load.stats(["read-back"])
    result.seconds = stats.seconds
    result.count(stats)
    result.figure("throughput (req/s)", stats.throughput)
    result.figure("certificates/s", (issue.sent - issue.failed) / stats.seconds)
    result.figure("p50 / p99 (ms)", f"{stats.p50_ms:.0f} / {stats.p99_ms:.0f}")
    result.figure("issue p50 / p99 (ms)", f"{issue.p50_ms:.0f} / {issue.p99_ms:.0f}")
    result.figure("read p50 / p99 (ms)", f"{back.p50_ms:.0f} / {back.p99_ms:.0f}")
    result.figure("memory (MiB)", f"{memory_before:.0f} -> {memory_after:.0f}")
    result.check(
        "error rate 0", stats.sent > 0 and stats.failed == 0, f"{stats.failed} of {stats.sent}: {stats.errors}"
    )
    return result


# ---------------------------------------------------------------- Swarm (localengine/swarm)

SWARM = ROOT / "localengine" / "swarm"
SWARM_URL = "http://127.0.0.1:8100"
SWARM_TOKEN = ROOT / ".local" / "swarm" / "secrets" / "api_token"
SWARM_STACK = "csm-swarm"
SWARM_CSM = f"{SWARM_STACK}_csm"
SWARM_UP_TIMEOUT = 900


def _swarm_csm_containers() -> list[str]:
    return run("docker", "ps", "--quiet", "--filter", f"label=com.docker.swarm.service.name={SWARM_CSM}").stdout.split()


def _swarm_healthy_replicas() -> int:
    out = run(
        "docker",
        "ps",
        "--quiet",
        "--filter",
        f"label=com.docker.swarm.service.name={SWARM_CSM}",
        "--filter",
        "health=healthy",
        check=False,
    ).stdout
    return len(out.split())


def _swarm_desired() -> int:
    spec = json.loads(run("docker", "service", "inspect", SWARM_CSM).stdout)[0]["Spec"]
    return int(spec["Mode"]["Replicated"]["Replicas"])


_swarm_deployed_here: list[bool] = []


def swarm_target() -> L.Target:
    """The local Swarm stack of localengine/swarm (the swarm helper's deploy), up and ready."""
    try:
        ready = httpx.get(f"{SWARM_URL}/health/ready", timeout=3).status_code == 200
    except httpx.HTTPError:
        ready = False
    if not ready or len(_swarm_csm_containers()) < 2:
        if not _swarm_deployed_here:
            stack_there = run(
                "docker",
                "service",
                "ls",
                "--quiet",
                "--filter",
                f"label=com.docker.stack.namespace={SWARM_STACK}",
                check=False,
            ).stdout.strip()
            _swarm_deployed_here.append(not stack_there)
        run(str(SWARM), "up", timeout=SWARM_UP_TIMEOUT)
    wait_for(f"{SWARM_URL}/health/ready", 200, timeout=180)
    return L.Target(SWARM_URL, SWARM_TOKEN.read_text().strip())


def swarm_cleanup() -> None:
    """Removes the Swarm stack if these cases deployed it (its volume and secrets stay)."""
    if any(_swarm_deployed_here):
        run(str(SWARM), "down", timeout=300, check=False)
    _swarm_deployed_here.clear()


def swarm_kill9(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("swarm-kill9", "kill -9 of one CSM replica (Swarm, through the proxy)")
    target = swarm_target()
    fixtures = L.prepare(target, certificates=3)
    desired = _swarm_desired()
    deadline = time.monotonic() + 180
    while _swarm_healthy_replicas() < desired and time.monotonic() < deadline:
        time.sleep(1)
    victims = _swarm_csm_containers()
    result.check(
        "at least two replicas serve before the kill",
        len(victims) >= 2 and desired >= 2,
        f"{len(victims)} running, {desired} desired",
    )
    victim = victims[0]
    # The window runs until at least 2000 requests were sent (so that the 99.9% bar allows two
    # failures, not a fraction of one) and at least 30 s after the kill; 300 s at most.
    load = L.Load(
        fixtures,
        L.mix((L.issue_and_read, 1), (L.read, 3)),
        concurrency=6,
        rate=3 * profile.steady_rate,
        max_seconds=600,
        timeout=30,
    )
    with load:
        time.sleep(10)
        killed_at = time.time()
        run("docker", "kill", "--signal", "KILL", victim)
        replaced_at = None
        limit = time.monotonic() + 240
        while time.monotonic() < limit:
            current = _swarm_csm_containers()
            if victim not in current and _swarm_healthy_replicas() >= desired:
                replaced_at = time.time()
                break
            time.sleep(0.5)
        until = time.monotonic() + 300
        while time.monotonic() < until and (len(load.snapshot()) < 2000 or time.time() - killed_at < 30):
            time.sleep(0.5)
        load.stop()
    stats = load.stats()
    result.seconds = stats.seconds
    result.count(stats)
    victim_state = json.loads(run("docker", "inspect", victim, check=False).stdout or "[{}]")[0].get("State", {})
    result.figure("killed replica exit", victim_state.get("ExitCode", "removed"))
    result.figure("p50 / p99 (ms)", f"{stats.p50_ms:.0f} / {stats.p99_ms:.0f}")
    if replaced_at is not None:
        result.recovery_s, result.recovery_of = replaced_at - killed_at, "replica replaced and healthy"
    result.notes.append(
        "The proxy retries a GET on another replica, and a POST only when it never reached "
        "one: a POST in flight on the killed replica fails (the client sees the connection "
        "close) and is counted here."
    )
    result.check(
        "Swarm replaces the killed replica with a healthy one",
        replaced_at is not None,
        "within 240 s" if replaced_at else "no healthy replacement within 240 s",
    )
    result.check(
        f"availability over the window at least {100 * SWARM_AVAILABILITY:g}% (of at least 2000 requests)",
        stats.sent >= 2000 and stats.availability >= SWARM_AVAILABILITY,
        f"{stats.sent - stats.failed}/{stats.sent} = {100 * stats.availability:.3f}%; {stats.errors}",
    )
    return result


def swarm_bad_digest(stack: Stack, profile: Profile) -> CaseResult:
    result = CaseResult("swarm-bad-digest", "Update to an unpullable image digest (Swarm, rollback)")
    target = swarm_target()
    fixtures = L.prepare(target, certificates=2)
    spec = json.loads(run("docker", "service", "inspect", SWARM_CSM).stdout)[0]
    image = spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    before = sorted(_swarm_csm_containers())
    bad = image.split("@")[0] + "@sha256:" + "0" * 64
    load = L.Load(
        fixtures,
        L.mix((L.issue_and_read, 1), (L.read, 3)),
        concurrency=4,
        rate=2 * profile.steady_rate,
        max_seconds=SWARM_UP_TIMEOUT,
        timeout=30,
    )
    with load:
        time.sleep(5)
        began = time.time()
        update = run(str(SWARM), "up", "--image", bad, timeout=SWARM_UP_TIMEOUT, check=False)
        answered = time.time() - began
        time.sleep(5)
        load.stop()
    stats = load.stats()
    after_spec = json.loads(run("docker", "service", "inspect", SWARM_CSM).stdout)[0]
    after = sorted(_swarm_csm_containers())
    result.seconds = stats.seconds
    result.count(stats)
    result.recovery_s, result.recovery_of = answered, "deploy failed after"
    state = (after_spec.get("UpdateStatus") or {}).get("State", "none")
    result.figure("update state", state)
    result.check(
        "the deploy (localengine/swarm up --image <unpullable digest>) fails",
        update.returncode != 0,
        f"exit {update.returncode}: "
        + " / ".join(line.strip() for line in update.stderr.splitlines() if "error" in line.lower())[:400],
    )
    result.check(
        "the service is back on its image (rolled back)",
        after_spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == image,
        f"update state {state}",
    )
    result.check(
        "the running replicas were never touched (same containers)",
        after == before,
        f"before {[c[:12] for c in before]}, after {[c[:12] for c in after]}",
    )
    result.check(
        "no request fails", stats.sent > 0 and stats.failed == 0, f"{stats.failed} of {stats.sent}: {stats.errors}"
    )
    # The next `localengine/swarm up` (no --image) renders the good image again.
    run(str(SWARM), "render", timeout=120, check=False)
    return result


Case = Callable[[Stack, Profile], CaseResult]

CASES: dict[str, Case] = {
    "cassandra-outage": cassandra_outage,
    "sigterm": sigterm,
    "memory": memory_limit,
    "secret-missing": lambda stack, profile: secret_fault(stack, profile, "missing"),
    "secret-unreadable": lambda stack, profile: secret_fault(stack, profile, "unreadable"),
    "bad-digest-compose": bad_digest_compose,
    "tmpfs-full": tmpfs_full,
    "swarm-kill9": swarm_kill9,
    "swarm-bad-digest": swarm_bad_digest,
    "schemathesis": api_fuzz,
    "load": sustained_load,
}
