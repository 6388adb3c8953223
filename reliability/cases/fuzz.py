"""Schemathesis against the service's own OpenAPI: no 5xx, every response matches the schema."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from reliability.cases.common import BUILD, Profile, first_lines
from reliability.report import CaseResult
from reliability.stack import ROOT, Stack

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
                    f"{case.get('name')}: {(problem.get('message') or '')} {first_lines(problem.text or '', 6)}"
                )
    result.failed = len(failures)
    result.figure("operations", operations)
    result.figure("examples per operation", profile.fuzz_examples)
    summary = re.search(r"Test cases:\s*\n\s*(.+)", done.stdout)
    result.check(
        "schemathesis ran",
        done.returncode in (0, 1) and result.sent > 0,
        f"exit {done.returncode}; "
        + (summary.group(1).strip() if summary else first_lines(done.stderr or done.stdout[-600:], 4)),
    )
    result.check(
        "no 5xx and every response matches the schema (status, content type, headers, body)",
        done.returncode == 0 and not failures,
        " | ".join(failures)[:1500],
    )
    result.notes.append(f"output in {out.relative_to(ROOT)}/output.txt; sent = test cases generated")
    return result
