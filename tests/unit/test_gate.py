"""The vulnerability gate (security/gate.py) on Trivy-format reports: one test per rule."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from security import gate

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "security" / "testdata" / "trivy"
TODAY = "2026-05-10"


def run_gate(*args: str | Path) -> subprocess.CompletedProcess:
    """Runs the gate exactly as the image component and the release workflow do."""
    return subprocess.run(
        [sys.executable, "-m", "security.gate", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def allowlist(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "allowlist.yaml"
    path.write_text(text)
    return path


def verdicts(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """Maps vulnerability id -> verdict from the gate's printed decision lines."""
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ("BLOCK", "ALLOW", "PASS"):
            out[parts[1]] = parts[0]
    return out


# ------------------------------------------------------------------ rules


@pytest.mark.parametrize("policy", ["dev", "prod"])
@pytest.mark.parametrize("fixture", ["critical-unfixed.json", "critical-fixed.json"])
def test_critical_blocks_in_every_policy_with_or_without_fix(fixture, policy):
    proc = run_gate("--report", FIXTURES / fixture, "--policy", policy)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "CRITICAL always blocks" in proc.stdout
    assert "-> BLOCKED" in proc.stdout


def test_high_with_fix_blocks_in_prod():
    proc = run_gate("--report", FIXTURES / "high-fixed.json", "--policy", "prod")
    assert proc.returncode == 1, proc.stdout
    assert verdicts(proc) == {"CVE-2026-2001": "BLOCK"}
    assert "HIGH with a fix available blocks in prod" in proc.stdout


def test_high_with_fix_passes_in_dev_but_is_printed():
    proc = run_gate("--report", FIXTURES / "high-fixed.json", "--policy", "dev")
    assert proc.returncode == 0, proc.stdout
    assert verdicts(proc) == {"CVE-2026-2001": "PASS"}
    assert "blocks in prod only" in proc.stdout


@pytest.mark.parametrize("policy", ["dev", "prod"])
def test_high_without_fix_passes(policy):
    proc = run_gate("--report", FIXTURES / "high-unfixed.json", "--policy", policy)
    assert proc.returncode == 0, proc.stdout
    assert verdicts(proc) == {"CVE-2026-2002": "PASS"}


@pytest.mark.parametrize("policy", ["dev", "prod"])
def test_medium_low_unknown_pass_and_every_decision_is_printed(policy):
    proc = run_gate("--report", FIXTURES / "low-medium.json", "--policy", policy)
    assert proc.returncode == 0
    assert verdicts(proc) == {"CVE-2026-3001": "PASS", "CVE-2026-3002": "PASS", "CVE-2026-3003": "PASS"}
    assert f"gate: policy={policy} findings=3 blocked=0 allowlisted=0 passed=3 -> PASSED" in proc.stdout


@pytest.mark.parametrize("fixture", ["clean.json", "no-results.json"])
def test_report_without_vulnerabilities_passes(fixture):
    proc = run_gate("--report", FIXTURES / fixture, "--policy", "prod")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "findings=0" in proc.stdout


def test_mixed_report_counts_every_result_and_package():
    proc = run_gate("--report", FIXTURES / "mixed.json", "--policy", "prod")
    assert proc.returncode == 1
    assert verdicts(proc) == {
        "CVE-2026-2002": "PASS",
        "CVE-2026-3001": "PASS",
        "CVE-2026-2001": "BLOCK",
        "GHSA-aaaa-bbbb-cccc": "BLOCK",
    }


# ------------------------------------------------------------------ allowlist


def test_allowlist_entry_exempts_until_it_expires(tmp_path):
    allow = allowlist(
        tmp_path,
        """
entries:
  - id: CVE-2026-2001
    package: h11
    reason: request smuggling needs a proxy in front that CSM's ALB does not allow
    expires: 2026-05-10
""",
    )
    proc = run_gate(
        "--report", FIXTURES / "high-fixed.json", "--policy", "prod", "--allowlist", allow, "--today", TODAY
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert verdicts(proc) == {"CVE-2026-2001": "ALLOW"}
    assert "allowlisted until 2026-05-10: request smuggling needs a proxy" in proc.stdout


def test_expired_allowlist_entry_blocks_and_says_so(tmp_path):
    allow = allowlist(
        tmp_path,
        """
entries:
  - id: CVE-2026-2001
    reason: waiting for the upstream release
    expires: 2026-05-09
""",
    )
    proc = run_gate(
        "--report", FIXTURES / "high-fixed.json", "--policy", "prod", "--allowlist", allow, "--today", TODAY
    )
    assert proc.returncode == 1, proc.stdout
    assert verdicts(proc) == {"CVE-2026-2001": "BLOCK"}
    assert "EXPIRED on 2026-05-09" in proc.stdout
    assert "waiting for the upstream release" in proc.stdout


def test_allowlist_entry_for_another_package_does_not_match(tmp_path):
    allow = allowlist(
        tmp_path,
        """
entries:
  - id: CVE-2026-2001
    package: not-h11
    reason: only applies to another package
    expires: 2030-01-01
""",
    )
    proc = run_gate(
        "--report", FIXTURES / "high-fixed.json", "--policy", "prod", "--allowlist", allow, "--today", TODAY
    )
    assert proc.returncode == 1
    assert verdicts(proc) == {"CVE-2026-2001": "BLOCK"}
    assert "matches no finding" in proc.stdout


def test_allowlist_cannot_exempt_critical(tmp_path):
    allow = allowlist(
        tmp_path,
        """
entries:
  - id: CVE-2026-1001
    reason: we would like to ship anyway
    expires: 2030-01-01
""",
    )
    proc = run_gate(
        "--report", FIXTURES / "critical-unfixed.json", "--policy", "dev", "--allowlist", allow, "--today", TODAY
    )
    assert proc.returncode == 1
    assert "CRITICAL cannot be allowlisted" in proc.stdout


def test_stale_expired_entry_is_reported_but_does_not_block_a_clean_report(tmp_path):
    allow = allowlist(
        tmp_path,
        """
entries:
  - id: CVE-2020-0001
    reason: old exception
    expires: 2021-01-01
""",
    )
    proc = run_gate("--report", FIXTURES / "clean.json", "--policy", "prod", "--allowlist", allow, "--today", TODAY)
    assert proc.returncode == 0
    assert "CVE-2020-0001 expired on 2021-01-01 and matches no finding: delete it" in proc.stdout


def test_shipped_allowlist_is_valid():
    entries = gate.load_allowlist(ROOT / "security" / "allowlist.yaml")
    today = dt.datetime.now(dt.UTC).date()
    assert all(e.reason and not e.expired(today) for e in entries), entries


# ------------------------------------------------------------------ bad input -> exit 2


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "invalid JSON at line 1"),
        ("[]", "top level must be an object"),
        ('{"SchemaVersion": 1, "Results": []}', "SchemaVersion must be 2"),
        ('{"version": "2.1.0", "runs": []}', "run trivy with --format json"),
        ('{"SchemaVersion": 2, "Results": {}}', "'Results' must be a list"),
        ('{"SchemaVersion": 2, "Results": [{"Vulnerabilities": []}]}', "missing required field 'Target'"),
        (
            '{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [{"PkgName": "a", "Severity": "HIGH"}]}]}',
            "Results[0].Vulnerabilities[0]: missing required field 'VulnerabilityID'",
        ),
        (
            '{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "a"}]}]}',
            "missing required field 'Severity'",
        ),
        (
            '{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "a", "Severity": "SEVERE"}]}]}',
            "unknown Severity 'SEVERE'",
        ),
    ],
)
def test_malformed_report_is_a_clear_error(tmp_path, content, message):
    report = tmp_path / "trivy.json"
    report.write_text(content)
    proc = run_gate("--report", report, "--policy", "prod")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert proc.stderr.startswith("gate: error:")


def test_missing_report_is_a_clear_error(tmp_path):
    proc = run_gate("--report", tmp_path / "absent.json", "--policy", "prod")
    assert proc.returncode == 2
    assert "cannot read report" in proc.stderr


def test_unknown_policy_is_rejected():
    proc = run_gate("--report", FIXTURES / "clean.json", "--policy", "staging")
    assert proc.returncode == 2
    assert "invalid choice: 'staging'" in proc.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        ("entries: [\n", "invalid YAML"),
        ("- id: CVE-1\n", "must be a mapping with a single key 'entries'"),
        ("entries: {}\n", "'entries' must be a list"),
        ("entries:\n  - id: CVE-1\n    expires: 2030-01-01\n", "missing required key 'reason'"),
        ("entries:\n  - id: CVE-1\n    reason: x\n", "missing required key 'expires'"),
        ("entries:\n  - reason: x\n    expires: 2030-01-01\n", "missing required key 'id'"),
        ("entries:\n  - id: CVE-1\n    reason: x\n    expires: soon\n", "'expires' must be a date YYYY-MM-DD"),
        ("entries:\n  - id: CVE-1\n    reason: x\n    expiry: 2030-01-01\n", "unknown key(s) expiry"),
        (
            "entries:\n  - id: CVE-1\n    reason: '   '\n    expires: 2030-01-01\n",
            "'reason' must be a non-empty string",
        ),
        (
            "entries:\n  - {id: CVE-1, reason: a, expires: 2030-01-01}\n  - {id: cve-1, reason: b, expires: 2030-01-01}\n",
            "duplicate entry for cve-1",
        ),
    ],
)
def test_malformed_allowlist_is_a_clear_error(tmp_path, content, message):
    proc = run_gate(
        "--report", FIXTURES / "high-fixed.json", "--policy", "prod", "--allowlist", allowlist(tmp_path, content)
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr


def test_bad_today_is_rejected():
    proc = run_gate("--report", FIXTURES / "clean.json", "--policy", "prod", "--today", "10/05/2026")
    assert proc.returncode == 2
    assert "not a date YYYY-MM-DD" in proc.stderr


# ------------------------------------------------------------------ outputs


def test_sarif_summary_and_json_outputs(tmp_path):
    sarif, summary, out = tmp_path / "gate.sarif", tmp_path / "summary.md", tmp_path / "gate.json"
    proc = run_gate(
        "--report", FIXTURES / "mixed.json", "--policy", "prod", "--sarif", sarif, "--summary", summary, "--json", out
    )
    assert proc.returncode == 1
    doc = json.loads(sarif.read_text())
    assert doc["version"] == "2.1.0"
    levels = {r["ruleId"]: r["level"] for r in doc["runs"][0]["results"]}
    assert levels == {
        "CVE-2026-2002": "note",
        "CVE-2026-3001": "note",
        "CVE-2026-2001": "error",
        "GHSA-aaaa-bbbb-cccc": "error",
    }
    assert all(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app/Dockerfile"
        for r in doc["runs"][0]["results"]
    )
    text = summary.read_text()
    assert "BLOCKED" in text and "| BLOCK | CVE-2026-2001 | HIGH | h11 |" in text
    decisions = json.loads(out.read_text())
    assert decisions["passed"] is False and decisions["counts"] == {"BLOCK": 2, "ALLOW": 0, "PASS": 2}


def test_decide_is_usable_as_a_library():
    findings = gate.load_report(FIXTURES / "mixed.json")
    result = gate.decide(findings, "prod", today=dt.date(2026, 5, 10))
    assert not result.passed
    assert sorted(d.finding.vuln_id for d in result.blocked) == ["CVE-2026-2001", "GHSA-aaaa-bbbb-cccc"]
