"""The Compose rules (security/compose_rules.py) on every Compose and Swarm stack file: checkov has
no framework for them. A `# csm-scan:skip=` without a reason is not honoured."""

from __future__ import annotations

from pathlib import Path

from security import compose_rules
from security.scanners.common import Finding, ToolReport


def scan(root: Path, files: list[tuple[str, bool, bool]]) -> ToolReport:
    report = ToolReport(
        "compose",
        "deploy/**/compose and stack files, and build/rendered/<stack>/swarm/",
        "Compose/stack files",
        files=[f for f, _, _ in files],
        stats={"rules": len(compose_rules.RULES), "services": 0},
    )
    if not files:
        report.note = "no Compose or stack file found"
    for path, swarm, local in files:
        try:
            results = list(compose_rules.check_file(root / path, path, swarm=swarm, local=local))
        except compose_rules.ComposeError as exc:
            report.findings.append(Finding("compose", "PARSE", path, 0, str(exc)))
            continue
        report.stats["services"] += len({r.service for r in results})
        for r in results:
            if r.ok:
                continue
            message = f"service {r.service}: {r.message} (rule: {compose_rules.RULES[r.rule]})"
            reason = r.suppressed_reason or None
            unreasoned = r.suppressed_reason is not None and not reason
            if unreasoned:
                message += " [csm-scan:skip without a reason]"
            report.findings.append(Finding("compose", r.rule, path, r.line, message, reason, unreasoned))
    return report
