"""A full /tmp: the service keeps answering (it writes no file after start-up)."""

from __future__ import annotations

import re
import time

from harness.proc import run
from reliability import load as L
from reliability.cases.common import Profile
from reliability.report import CaseResult
from reliability.stack import ROOT, Stack, inspect

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
# with /tmp full at start the healthcheck reads the settings instead. workers.py makes the directory of
# the workers' metric files once, at start, and only with CSM_WORKERS above 1 (this stack runs one).
STARTUP_WRITERS = frozenset({"cli.py", "probe.py", "workers.py"})
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
