"""Cassandra stops for the outage window: the service turns unready, stays alive, and is ready again within seconds of Cassandra, losing no acknowledged write."""

from __future__ import annotations

import logging
import time

import httpx

from harness.poll import within
from harness.proc import run
from reliability import load as L
from reliability.cases.common import READY_AFTER_CASSANDRA_S, Profile, api_mix
from reliability.report import CaseResult
from reliability.stack import Poller, Stack


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
    api = L.Load(fixtures, api_mix(), concurrency=4, rate=profile.steady_rate, max_seconds=budget, timeout=15)
    with Poller(f"{target.url}/health/ready", interval=0.1, max_seconds=budget) as ready, probes, api:
        time.sleep(5)
        stop_at = time.time()
        run("docker", "stop", "-t", "60", cassandra, timeout=120)
        down_at = time.time()
        time.sleep(max(0.0, profile.outage_seconds - (time.time() - down_at)))
        start_at = time.time()
        run("docker", "start", cassandra)
        back_at = within(
            "Cassandra answering CQL", lambda: _cql_answers(stack.cql_port, password) and time.time(), 480, 0.2
        )
        ready_at = (
            within("ready after Cassandra", lambda: ready.first(200, after=back_at), 60, 0.1) if back_at else None
        )
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
