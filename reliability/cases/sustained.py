"""Sustained load at the profile's concurrency: throughput, latency percentiles and no error."""

from __future__ import annotations

from reliability import load as L
from reliability.cases.common import Profile
from reliability.report import CaseResult
from reliability.stack import Stack, memory_mib


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
