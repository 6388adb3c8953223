"""SIGTERM under load: requests in flight finish, new ones are refused cleanly, the process exits 0."""

from __future__ import annotations

import threading
import time

import httpx

from harness.proc import run
from reliability import load as L
from reliability.cases.common import Profile, api_mix
from reliability.report import CaseResult
from reliability.stack import Stack, inspect


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
        fixtures, api_mix(), concurrency=8, rate=3 * profile.steady_rate, max_seconds=180, keepalive=False, timeout=60
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
