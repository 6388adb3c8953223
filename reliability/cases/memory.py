"""The memory limit under a large list workload: the container stays under it, or is killed and restarted with backoff."""

from __future__ import annotations

import time

import httpx

from harness.poll import wait_for
from harness.proc import run
from reliability import load as L
from reliability.cases.common import Profile
from reliability.cases.restarts import Restarts, check_backoff
from reliability.report import CaseResult
from reliability.stack import Events, Stack, inspect, memory_mib


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
