"""Vulnerability gate: reads a Trivy JSON report and decides whether an image may ship.

Rules, applied to every vulnerability in the report:
  * CRITICAL always blocks, in every policy; the allowlist cannot exempt it.
  * HIGH with a fix available (FixedVersion set) blocks under the prod policy.
  * Anything that blocks may be exempted by an allowlist entry (id, optional package,
    reason, expires) until the end of its expiry day; once expired, the entry no
    longer exempts and the gate says the entry expired.
  * Everything else passes and is still printed.

Exit codes: 0 pass, 1 blocked, 2 bad input (unreadable or malformed report or allowlist).

    python -m security.gate --report trivy.json --policy prod \
        [--allowlist security/allowlist.yaml] [--today YYYY-MM-DD] \
        [--sarif gate.sarif] [--summary "$GITHUB_STEP_SUMMARY"] [--json decisions.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
POLICIES = ("dev", "prod")
ALLOWLIST_KEYS = {"id", "package", "reason", "expires"}

BLOCK, ALLOW, PASS = "BLOCK", "ALLOW", "PASS"


class GateError(Exception):
    """Bad input: the gate cannot decide, so it fails closed with exit code 2."""


@dataclass(frozen=True)
class Finding:
    vuln_id: str
    package: str
    installed: str
    fixed: str
    severity: str
    target: str
    title: str = ""
    url: str = ""

    def describe(self) -> str:
        fix = f"fixed in {self.fixed}" if self.fixed else "no fix available"
        return f"{self.vuln_id} {self.severity} {self.package} {self.installed or '?'} ({fix}) in {self.target}"


@dataclass(frozen=True)
class AllowEntry:
    vuln_id: str
    package: str | None
    reason: str
    expires: dt.date

    def matches(self, finding: Finding) -> bool:
        if self.vuln_id.upper() != finding.vuln_id.upper():
            return False
        return self.package is None or self.package == finding.package

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def describe(self) -> str:
        pkg = f" ({self.package})" if self.package else ""
        return f"{self.vuln_id}{pkg}"


@dataclass(frozen=True)
class Decision:
    finding: Finding
    verdict: str
    reason: str

    def line(self) -> str:
        return f"{self.verdict:<5} {self.finding.describe()}: {self.reason}"


@dataclass
class GateResult:
    policy: str
    today: dt.date
    decisions: list[Decision]
    notes: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> list[Decision]:
        return [d for d in self.decisions if d.verdict == BLOCK]

    @property
    def passed(self) -> bool:
        return not self.blocked

    def count(self, verdict: str) -> int:
        return sum(1 for d in self.decisions if d.verdict == verdict)

    def summary_line(self) -> str:
        outcome = "PASSED" if self.passed else "BLOCKED"
        return (
            f"gate: policy={self.policy} findings={len(self.decisions)} blocked={self.count(BLOCK)} "
            f"allowlisted={self.count(ALLOW)} passed={self.count(PASS)} -> {outcome}"
        )


# ---------------------------------------------------------------- report parsing


def _str_field(obj: dict, key: str, where: str, required: bool) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise GateError(f"{where}: missing required field {key!r}")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise GateError(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def parse_report(data: Any, source: str = "report") -> list[Finding]:
    """Validate a decoded Trivy JSON report (SchemaVersion 2) and return its vulnerabilities."""
    if not isinstance(data, dict):
        raise GateError(f"{source}: not a Trivy JSON report (top level must be an object)")
    if data.get("SchemaVersion") != 2:
        raise GateError(
            f"{source}: not a Trivy JSON report (SchemaVersion must be 2, "
            f"got {data.get('SchemaVersion')!r}); run trivy with --format json"
        )
    results = data.get("Results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise GateError(f"{source}: 'Results' must be a list")
    findings: list[Finding] = []
    for i, result in enumerate(results):
        where = f"{source}: Results[{i}]"
        if not isinstance(result, dict):
            raise GateError(f"{where}: must be an object")
        target = _str_field(result, "Target", where, required=True)
        vulns = result.get("Vulnerabilities")
        if vulns is None:
            continue
        if not isinstance(vulns, list):
            raise GateError(f"{where}: 'Vulnerabilities' must be a list")
        for j, vuln in enumerate(vulns):
            vwhere = f"{where}.Vulnerabilities[{j}]"
            if not isinstance(vuln, dict):
                raise GateError(f"{vwhere}: must be an object")
            severity = _str_field(vuln, "Severity", vwhere, required=True).upper()
            if severity not in SEVERITIES:
                raise GateError(
                    f"{vwhere}: unknown Severity {vuln['Severity']!r} (expected one of {', '.join(SEVERITIES)})"
                )
            findings.append(
                Finding(
                    vuln_id=_str_field(vuln, "VulnerabilityID", vwhere, required=True),
                    package=_str_field(vuln, "PkgName", vwhere, required=True),
                    installed=_str_field(vuln, "InstalledVersion", vwhere, required=False),
                    fixed=_str_field(vuln, "FixedVersion", vwhere, required=False),
                    severity=severity,
                    target=target,
                    title=_str_field(vuln, "Title", vwhere, required=False),
                    url=_str_field(vuln, "PrimaryURL", vwhere, required=False),
                )
            )
    return findings


def load_report(path: Path) -> list[Finding]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GateError(f"cannot read report {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GateError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return parse_report(data, str(path))


# ---------------------------------------------------------------- allowlist parsing


def _parse_date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise GateError(f"{where}: 'expires' must be a date YYYY-MM-DD, got {value!r}")


def parse_allowlist(data: Any, source: str = "allowlist") -> list[AllowEntry]:
    """Validate a decoded allowlist: a mapping with an 'entries' list (an empty file means no entries)."""
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) - {"entries"}:
        raise GateError(f"{source}: must be a mapping with a single key 'entries' (a list)")
    raw = data.get("entries")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise GateError(f"{source}: 'entries' must be a list")
    entries: list[AllowEntry] = []
    seen: set[tuple[str, str | None]] = set()
    for i, item in enumerate(raw):
        where = f"{source}: entries[{i}]"
        if not isinstance(item, dict):
            raise GateError(f"{where}: must be a mapping with id, reason, expires (and optionally package)")
        unknown = set(item) - ALLOWLIST_KEYS
        if unknown:
            raise GateError(
                f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"allowed: {', '.join(sorted(ALLOWLIST_KEYS))}"
            )
        for key in ("id", "reason", "expires"):
            if item.get(key) in (None, ""):
                raise GateError(f"{where}: missing required key {key!r}")
        vuln_id, reason, package = item["id"], item["reason"], item.get("package")
        if not isinstance(vuln_id, str) or not vuln_id.strip():
            raise GateError(f"{where}: 'id' must be a non-empty string")
        if not isinstance(reason, str) or not reason.strip():
            raise GateError(f"{where}: 'reason' must be a non-empty string saying why the exception is safe")
        if package is not None and (not isinstance(package, str) or not package.strip()):
            raise GateError(f"{where}: 'package' must be a non-empty string when given")
        entry = AllowEntry(
            vuln_id.strip(),
            package.strip() if package else None,
            " ".join(reason.split()),
            _parse_date(item["expires"], where),
        )
        key = (entry.vuln_id.upper(), entry.package)
        if key in seen:
            raise GateError(f"{where}: duplicate entry for {entry.describe()}")
        seen.add(key)
        entries.append(entry)
    return entries


def load_allowlist(path: Path) -> list[AllowEntry]:
    try:
        import yaml
    except ImportError as exc:  # the scan venv, the dev venv and the Pulumi venv all have PyYAML
        raise GateError("reading an allowlist needs PyYAML (pip install pyyaml)") from exc
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GateError(f"cannot read allowlist {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GateError(f"{path}: invalid YAML: {exc}") from exc
    return parse_allowlist(data, str(path))


# ---------------------------------------------------------------- decision


def _base_rule(finding: Finding, policy: str) -> tuple[bool, str]:
    if finding.severity == "CRITICAL":
        return True, "CRITICAL always blocks"
    if finding.severity == "HIGH" and finding.fixed:
        if policy == "prod":
            return True, "HIGH with a fix available blocks in prod"
        return False, "HIGH with a fix available: blocks in prod only, upgrade before release"
    if finding.severity == "HIGH":
        return False, "HIGH with no fix available does not block"
    return False, f"{finding.severity} does not block"


def _matching_entry(finding: Finding, allowlist: Sequence[AllowEntry]) -> AllowEntry | None:
    matches = [e for e in allowlist if e.matches(finding)]
    # An entry naming the package is more specific than one for the id alone.
    matches.sort(key=lambda e: e.package is None)
    return matches[0] if matches else None


def decide(
    findings: Iterable[Finding], policy: str, allowlist: Sequence[AllowEntry] = (), today: dt.date | None = None
) -> GateResult:
    if policy not in POLICIES:
        raise GateError(f"unknown policy {policy!r} (expected one of {', '.join(POLICIES)})")
    today = today or dt.datetime.now(dt.UTC).date()
    result = GateResult(policy=policy, today=today, decisions=[])
    used: set[AllowEntry] = set()
    for finding in findings:
        blocks, rule = _base_rule(finding, policy)
        entry = _matching_entry(finding, allowlist)
        if entry is not None:
            used.add(entry)
        if not blocks:
            verdict, reason = PASS, rule
        elif entry is None:
            verdict, reason = BLOCK, rule
        elif finding.severity == "CRITICAL":
            verdict, reason = (
                BLOCK,
                f"{rule}; allowlist entry {entry.describe()} ignored: CRITICAL cannot be allowlisted",
            )
        elif entry.expired(today):
            verdict, reason = (
                BLOCK,
                (
                    f"{rule}; allowlist entry {entry.describe()} EXPIRED on "
                    f"{entry.expires.isoformat()} (reason was: {entry.reason})"
                ),
            )
        else:
            verdict, reason = ALLOW, (f"{rule}, but allowlisted until {entry.expires.isoformat()}: {entry.reason}")
        result.decisions.append(Decision(finding, verdict, reason))
    for entry in allowlist:
        if entry.expired(today) and entry not in used:
            result.notes.append(
                f"allowlist entry {entry.describe()} expired on {entry.expires.isoformat()} "
                "and matches no finding: delete it"
            )
        elif entry not in used:
            result.notes.append(f"allowlist entry {entry.describe()} matches no finding: delete it if the fix shipped")
    return result


# ---------------------------------------------------------------- outputs

_SARIF_LEVEL = {BLOCK: "error", ALLOW: "warning", PASS: "note"}


def to_sarif(result: GateResult, location: str) -> dict:
    rules: dict[str, dict] = {}
    results = []
    for d in result.decisions:
        f = d.finding
        rule = rules.setdefault(
            f.vuln_id,
            {
                "id": f.vuln_id,
                "name": f.vuln_id.replace("-", ""),
                "shortDescription": {"text": f.title or f.vuln_id},
                "properties": {
                    "security-severity": {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "2.0"}.get(
                        f.severity, "0.0"
                    ),
                    "tags": ["security", "vulnerability", f.severity],
                },
            },
        )
        if f.url:
            rule["helpUri"] = f.url
        results.append(
            {
                "ruleId": f.vuln_id,
                "level": _SARIF_LEVEL[d.verdict],
                "message": {"text": f"{d.verdict}: {f.describe()}: {d.reason}"},
                "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": location}, "region": {"startLine": 1}}}
                ],
                "partialFingerprints": {"vulnerability": f"{f.vuln_id}/{f.package}/{f.installed}/{f.target}"},
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "csm-vulnerability-gate",
                        "informationUri": "https://github.com/aquasecurity/trivy",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }


def to_markdown(result: GateResult) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        f"### Vulnerability gate ({result.policy}): {'passed' if result.passed else 'BLOCKED'}",
        "",
        f"`{result.summary_line()}`",
        "",
    ]
    if result.decisions:
        lines += ["| verdict | id | severity | package | installed | fixed | reason |", "|---|---|---|---|---|---|---|"]
        order = {BLOCK: 0, ALLOW: 1, PASS: 2}
        for d in sorted(result.decisions, key=lambda d: (order[d.verdict], d.finding.vuln_id)):
            f = d.finding
            lines.append(
                f"| {d.verdict} | {cell(f.vuln_id)} | {f.severity} | {cell(f.package)} | "
                f"{cell(f.installed)} | {cell(f.fixed) or '-'} | {cell(d.reason)} |"
            )
    lines += [f"- {cell(n)}" for n in result.notes]
    return "\n".join(lines) + "\n"


def to_json(result: GateResult) -> dict:
    return {
        "policy": result.policy,
        "today": result.today.isoformat(),
        "passed": result.passed,
        "counts": {v: result.count(v) for v in (BLOCK, ALLOW, PASS)},
        "decisions": [{"verdict": d.verdict, "reason": d.reason, **d.finding.__dict__} for d in result.decisions],
        "notes": result.notes,
    }


# ---------------------------------------------------------------- command line


def _date_arg(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m security.gate", description=__doc__.split("\n\n")[0])
    p.add_argument("--report", required=True, type=Path, help="Trivy JSON report (trivy --format json)")
    p.add_argument("--policy", required=True, choices=POLICIES)
    p.add_argument("--allowlist", type=Path, help="YAML allowlist (entries: id, package?, reason, expires)")
    p.add_argument("--today", type=_date_arg, help="evaluate expiry as of this date (default: today, UTC)")
    p.add_argument("--sarif", type=Path, help="write the decisions as SARIF 2.1.0 here")
    p.add_argument(
        "--sarif-location",
        default="app/Dockerfile",
        help="repository file the SARIF results point at (default: app/Dockerfile)",
    )
    p.add_argument("--summary", type=Path, help="append a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--json", dest="json_out", type=Path, help="write the decisions as JSON here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        findings = load_report(args.report)
        allowlist = load_allowlist(args.allowlist) if args.allowlist else []
        result = decide(findings, args.policy, allowlist, args.today)
    except GateError as exc:
        print(f"gate: error: {exc}", file=sys.stderr)
        return 2
    for d in result.decisions:
        print(d.line())
    for note in result.notes:
        print(f"NOTE  {note}")
    print(result.summary_line())
    try:
        if args.sarif:
            args.sarif.write_text(json.dumps(to_sarif(result, args.sarif_location), indent=2) + "\n")
        if args.json_out:
            args.json_out.write_text(json.dumps(to_json(result), indent=2) + "\n")
        if args.summary:
            with args.summary.open("a", encoding="utf-8") as fh:
                fh.write(to_markdown(result))
    except OSError as exc:
        print(f"gate: error: cannot write output: {exc}", file=sys.stderr)
        return 2
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
