"""The gate over every tool's findings, and the reports: Markdown, JSON and one SARIF file per tool."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from security.scanners.common import ToolReport

GATE_RULE = (
    "zero unsuppressed findings; a suppression counts only when it is written in place with a reason, "
    "and a file a tool could not scan is a finding"
)
INFO_URI = {
    "hadolint": "https://github.com/hadolint/hadolint",
    "bandit": "https://bandit.readthedocs.io/",
    "compose": "security/compose_rules.py",
    "checkov": "https://www.checkov.io/",
}


@dataclass(frozen=True)
class Gate:
    unsuppressed: int
    suppressed: int
    unreasoned: int
    tools: int

    @property
    def passed(self) -> bool:
        return self.unsuppressed == 0

    def line(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        unreasoned = f" ({self.unreasoned} of them suppressed without a reason)" if self.unreasoned else ""
        return (
            f"gate: {verdict}: {self.unsuppressed} unsuppressed findings{unreasoned} from {self.tools} tools; "
            f"{self.suppressed} suppressions, each with a reason"
        )


def gate(reports: list[ToolReport]) -> Gate:
    findings = [f for r in reports for f in r.findings]
    return Gate(
        unsuppressed=sum(not f.suppressed for f in findings),
        suppressed=sum(f.suppressed for f in findings),
        unreasoned=sum(f.unreasoned for f in findings),
        tools=len(reports),
    )


def sarif_name(report: ToolReport) -> str:
    return report.tool.replace("/", "-") + ".sarif"


def sarif(report: ToolReport) -> dict:
    driver: dict = {"name": report.tool, "informationUri": INFO_URI.get(report.tool.split("/")[0], ""), "rules": []}
    if report.version:
        driver["version"] = report.version
    rules: dict[str, dict] = {}
    results = []
    for f in report.findings:
        rules.setdefault(f.rule, {"id": f.rule, "shortDescription": {"text": f.rule}})
        region = {"startLine": f.line} if f.line > 0 else {}
        location: dict = {"artifactLocation": {"uri": f.target}}
        if region:
            location["region"] = region
        result: dict = {
            "ruleId": f.rule,
            "level": "error",
            "message": {"text": f.message},
            "locations": [{"physicalLocation": location}],
        }
        if f.suppressed:
            result["suppressions"] = [{"kind": "inSource", "justification": f.suppressed_reason}]
        results.append(result)
    driver["rules"] = list(rules.values())
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "results": results,
                "artifacts": [{"location": {"uri": path}} for path in report.files],
            }
        ],
    }


def as_json(reports: list[ToolReport], result: Gate) -> dict:
    return {
        "gate": {"rule": GATE_RULE, "passed": result.passed, **asdict(result)},
        "tools": [
            dict(
                asdict(r),
                unsuppressed=len(r.unsuppressed),
                suppressed=len(r.suppressed),
                sarif=f"sarif/{sarif_name(r)}",
            )
            for r in reports
        ],
    }


def markdown(reports: list[ToolReport], result: Gate) -> str:
    lines = [
        "# Security scan",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"**{'Passed' if result.passed else 'FAILED'}.** The gate: {GATE_RULE}.",
        "",
        "| tool | version | scanned | unsuppressed | suppressed with a reason | the tool's own counts | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        stats = ", ".join(f"{v} {k}" for k, v in r.stats.items())
        lines.append(
            f"| {r.tool} | {r.version} | {len(r.files)} {r.unit} | {len(r.unsuppressed)} | "
            f"{len(r.suppressed)} | {stats} | {r.note} |"
        )
    failing = [f for r in reports for f in r.unsuppressed]
    suppressed = [f for r in reports for f in r.suppressed]
    lines += ["", f"## Unsuppressed findings ({len(failing)})", ""]
    lines += [f"- `{f.tool}` {f.target}:{f.line} **{f.rule}** {f.message}" for f in failing] or ["None."]
    lines += ["", f"## Suppressed in place, with their reasons ({len(suppressed)})", ""]
    lines += [f"- `{f.tool}` {f.target}:{f.line} **{f.rule}**: {f.suppressed_reason}" for f in suppressed] or ["None."]
    lines += ["", "## What each tool scanned", ""]
    lines += [f"- {r.tool} ({r.scope}): {', '.join(r.files) or '-'}" for r in reports]
    return "\n".join(lines) + "\n"


def write(out: Path, reports: list[ToolReport], result: Gate) -> None:
    (out / "sarif").mkdir(parents=True, exist_ok=True)
    for stale in (out / "sarif").glob("*.sarif"):
        stale.unlink()
    for r in reports:
        (out / "sarif" / sarif_name(r)).write_text(json.dumps(sarif(r), indent=2) + "\n")
    (out / "report.md").write_text(markdown(reports, result))
    (out / "report.json").write_text(json.dumps(as_json(reports, result), indent=2) + "\n")
