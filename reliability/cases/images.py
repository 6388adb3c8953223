"""A wrong image digest in Compose: the deploy fails and the running service is untouched."""

from __future__ import annotations

import time

from reliability import load as L
from reliability.cases.common import Profile, first_lines
from reliability.report import CaseResult
from reliability.stack import Stack, inspect


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
        "the deploy fails", update.returncode != 0, f"exit {update.returncode}: {first_lines(update.stderr, 2)}"
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
