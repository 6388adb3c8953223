"""The Swarm cases on localengine/swarm: a kill -9 of a replica and a wrong digest, both under load."""

from __future__ import annotations

import json
import time

import httpx

from harness.poll import wait_for, within
from harness.proc import run
from reliability import load as L
from reliability.cases.common import SWARM_AVAILABILITY, Profile
from reliability.report import CaseResult
from reliability.stack import ROOT, Stack

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
    within("every Swarm replica healthy", lambda: _swarm_healthy_replicas() >= desired, 180)
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
