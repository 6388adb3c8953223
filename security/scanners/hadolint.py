"""hadolint on every Dockerfile. A finding silenced by `# hadolint ignore=` counts as suppressed only
when the comment line above the pragma says why."""

from __future__ import annotations

import re
from pathlib import Path

from security.scanners.common import Finding, ToolReport, read_json, run, tool_bin

PRAGMA_RE = re.compile(r"^\s*#\s*hadolint\s+(?:global\s+)?ignore=(?P<codes>[A-Z0-9, ]+)\s*$")


def hadolint_reason(lines: list[str], line: int, code: str) -> str | None:
    """For a finding at `line` suppressed by a pragma, the written reason: the comment line above the pragma."""
    i = line - 2  # 0-based index of the line above the instruction
    while i >= 0 and lines[i].lstrip().startswith("#"):
        m = PRAGMA_RE.match(lines[i])
        if m and code in [c.strip() for c in m.group("codes").split(",")]:
            above = lines[i - 1].strip() if i > 0 else ""
            if above.startswith("#") and not PRAGMA_RE.match(above) and len(above.lstrip("# ").strip()) >= 8:
                return above.lstrip("# ").strip()
            return None
        i -= 1
    return None


def scan(root: Path, files: list[str]) -> ToolReport:
    report = ToolReport("hadolint", "every Dockerfile (tests and fixtures excepted)", "Dockerfiles", files=files)
    if not files:
        report.note = "no Dockerfile found"
        return report
    binary = tool_bin("hadolint")
    report.version = run([binary, "--version"], root, ok_codes=(0,)).stdout.split()[-1]
    enforced = read_json(run([binary, "-f", "json", "--no-fail", *files], root), "hadolint")
    everything = read_json(
        run([binary, "-f", "json", "--no-fail", "--disable-ignore-pragma", *files], root), "hadolint"
    )
    reported = {(f["file"], f["line"], f["code"]) for f in enforced}
    for f in everything:
        reason, unreasoned = None, False
        if (f["file"], f["line"], f["code"]) not in reported:
            lines = (root / f["file"]).read_text(encoding="utf-8").splitlines()
            reason = hadolint_reason(lines, f["line"], f["code"])
            if reason is None:
                unreasoned = True
                f["message"] += " [ignore pragma without a reason comment on the line above it]"
        report.findings.append(
            Finding("hadolint", f["code"], f["file"], f["line"], f"{f['level']}: {f['message']}", reason, unreasoned)
        )
    return report
