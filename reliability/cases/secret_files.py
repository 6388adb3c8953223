"""A missing or unreadable secret file: the service exits 2 naming the setting, and the orchestrator restarts it with backoff."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from reliability.cases.common import Profile, first_lines
from reliability.cases.restarts import Restarts, check_backoff
from reliability.report import CaseResult
from reliability.stack import FAULTS, Events, Stack, inspect, logs


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
    result.check("a clear error naming the setting, no traceback", named and "Traceback" not in text, first_lines(text))
    result.check(
        "never serves",
        state["Health"]["Status"] != "healthy" if state.get("Health") else True,
        f"health {state.get('Health', {}).get('Status')}",
    )
    check_backoff(result, restarts, profile.restart_window)
    return result
