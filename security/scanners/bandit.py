"""bandit on the repository's Python. A `# nosec` counts as a suppression only when it names the
test id and gives a reason after it."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from security.scanners.common import Finding, ToolReport, read_json, run, tool_bin

NOSEC_RE = re.compile(r"#\s*nosec\b:?\s*(?P<ids>(?:B\d{3}[\s,]*)*)(?P<rest>.*)$")


def bandit_reason(line_text: str, test_id: str) -> str | None:
    m = NOSEC_RE.search(line_text)
    if not m:
        return None
    ids = re.findall(r"B\d{3}", m.group("ids"))
    reason = m.group("rest").strip(" #:-\t")
    return reason if test_id in ids and len(reason) >= 8 else None


def scan(root: Path, files: list[str]) -> ToolReport:
    report = ToolReport(
        "bandit", "app/src, components, policy, security and the program's root *.py", "Python files", files=files
    )
    if not files:
        report.note = "no Python file found"
        return report
    report.version = metadata.version("bandit")
    binary = tool_bin("bandit")
    enforced = read_json(run([binary, "-f", "json", "-q", *files], root), "bandit")
    everything = read_json(run([binary, "-f", "json", "-q", "--ignore-nosec", *files], root), "bandit")
    report.stats = {"lines of code": enforced["metrics"]["_totals"]["loc"]}
    for err in enforced.get("errors", []):
        report.findings.append(
            Finding(
                "bandit",
                "ERROR",
                err.get("filename", "?").removeprefix("./"),
                0,
                f"bandit could not scan this file: {err.get('reason', '')}",
            )
        )
    for r in enforced["results"] + everything["results"]:
        r["filename"] = r["filename"].removeprefix("./")
    reported = {(r["filename"], r["line_number"], r["test_id"]) for r in enforced["results"]}
    for r in everything["results"]:
        reason, unreasoned = None, False
        message = f"{r['issue_severity']}/{r['issue_confidence']}: {r['issue_text']}"
        if (r["filename"], r["line_number"], r["test_id"]) not in reported:
            lines = (root / r["filename"]).read_text(encoding="utf-8").splitlines()
            reason = bandit_reason(lines[r["line_number"] - 1], r["test_id"])
            if reason is None:
                unreasoned = True
                message += f" [nosec without the test id {r['test_id']} and a reason]"
        report.findings.append(
            Finding("bandit", r["test_id"], r["filename"], r["line_number"], message, reason, unreasoned)
        )
    return report
