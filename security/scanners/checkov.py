"""checkov, offline, in one run: its dockerfile, kubernetes and github_actions frameworks on the files
given for each, and its secrets framework on every file any scanner looks at.

A file its framework produced no result for was not scanned (checkov skips files it cannot parse or
that fail its schema, silently): that is a NOT_SCANNED finding, never a silent pass. A
`checkov:skip=` without a reason is not honoured."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

from security.scanners.common import Finding, ToolReport, read_json, run

NO_REASON = {"", "no comment provided"}
SCOPES = {
    "dockerfile": ("every Dockerfile", "Dockerfiles"),
    "kubernetes": ("the rendered Kubernetes manifests, build/rendered/<stack>/{eks,kubernetes}/", "manifests"),
    "github_actions": ("the workflows in .github/workflows/", "workflows"),
    "secrets": ("every file the other scanners look at, plus Pulumi*.yaml", "files"),
}


def _relpath(root: Path, path: str) -> str:
    p = Path(path)
    if p.is_absolute() and p.is_relative_to(root):
        return p.relative_to(root).as_posix()
    return path.lstrip("/")


def _report(kind: str, files: list[str], version: str) -> ToolReport:
    scope, unit = SCOPES[kind]
    # The secrets framework reports only what it found, never a pass.
    stats = {"failed": 0, "skipped": 0} if kind == "secrets" else {"passed": 0, "failed": 0, "skipped": 0}
    return ToolReport(f"checkov/{kind}", scope, unit, version, files=files, stats=stats)


def scan(root: Path, scanned: dict[str, list[str]], secrets_files: list[str]) -> list[ToolReport]:
    """`scanned` maps a checkov framework to the files it must check; every file is also secrets-scanned."""
    version = metadata.version("checkov")
    all_files = sorted({f for files in scanned.values() for f in files} | set(secrets_files))
    reports = {kind: _report(kind, files, version) for kind, files in scanned.items()}
    reports["secrets"] = _report("secrets", all_files, version)
    if not all_files:
        for rep in reports.values():
            rep.note = "nothing to scan"
        return [reports[k] for k in sorted(reports)]
    argv = [
        sys.executable,
        "-m",
        "security.checkov_compat",
        "--skip-download",
        "-o",
        "json",
        "--framework",
        *sorted(set(scanned) | {"secrets"}),
    ]
    for f in all_files:
        argv += ["-f", f]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    data = read_json(run(argv, root, env=env), "checkov")
    results = data if isinstance(data, list) else [data]
    seen: dict[str, set[str]] = {kind: set() for kind in reports}
    for res in results:
        if not isinstance(res, dict) or res.get("check_type") not in reports:
            continue
        kind = res["check_type"]
        rep = reports[kind]
        body = res.get("results") or {}
        for path in body.get("parsing_errors", []):
            rep.findings.append(
                Finding(rep.tool, "PARSE", _relpath(root, path), 0, "checkov could not parse this file")
            )
            seen[kind].add(_relpath(root, path))
        for state, stat in (("passed_checks", "passed"), ("failed_checks", "failed"), ("skipped_checks", "skipped")):
            for item in body.get(state, []):
                target = _relpath(root, item["file_path"])
                seen[kind].add(target)
                rep.stats[stat] = rep.stats.get(stat, 0) + 1
                if state == "passed_checks":
                    continue
                reason, unreasoned = None, False
                message = f"{item.get('check_name', '')} ({item.get('resource', '')})"
                if state == "skipped_checks":
                    comment = ((item.get("check_result") or {}).get("suppress_comment") or "").strip()
                    reason = comment if comment.lower() not in NO_REASON else None
                    if reason is None:
                        unreasoned = True
                        message += " [checkov:skip without a reason]"
                line = (item.get("file_line_range") or [0])[0]
                rep.findings.append(Finding(rep.tool, item["check_id"], target, line, message, reason, unreasoned))
    for kind, files in scanned.items():
        rep = reports[kind]
        for f in files:
            if f not in seen[kind]:
                rep.findings.append(
                    Finding(
                        rep.tool,
                        "NOT_SCANNED",
                        f,
                        0,
                        f"checkov's {kind} framework produced no result for this file "
                        "(unparseable, or rejected by its schema)",
                    )
                )
        if not files:
            rep.note = "no file to scan"
    return [reports[k] for k in sorted(reports)]
