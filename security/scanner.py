"""The offline security scan behind `make scan` (run through security/scan, in the .venv-scan venv).

Tools and what they look at (paths relative to the repository root):
  hadolint   every Dockerfile (tests and fixtures excepted)
  checkov    dockerfile: the Dockerfiles; kubernetes: build/rendered/<stack>/{eks,kubernetes}/;
             github_actions: .github/workflows/; secrets: every file scanned here
  compose    security/compose_rules.py on deploy/**/compose|stack files and build/rendered/<stack>/swarm/
  bandit     app/src, components, policy, security and the Pulumi program's root *.py

A check is one (rule, target) pair a tool evaluated: checkov's own passed/failed results; for
hadolint and bandit, every rule of the tool on every file; for the Compose rules, every rule on
every service; for the secrets scan, every file. A check fails when it has a finding that is not
suppressed in place with a written reason. Score = passed checks / all checks * 100, rounded down.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import subprocess  # nosec B404 # runs the pinned scanners from the scan venv with argv lists, never a shell
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from security import compose_rules

SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".local", "build",
             "tests", "testdata", ".mypy_cache", ".ruff_cache"}
PYTHON_DIRS = ("app/src", "components", "policy", "security")
RENDERED_K8S = ("eks", "kubernetes")
TOOL_TIMEOUT = 600


@dataclass
class Finding:
    tool: str
    rule: str
    target: str
    line: int
    message: str
    suppressed_reason: str | None = None

    def __post_init__(self) -> None:
        self.message = " ".join(self.message.split())  # one line per finding, whatever the tool printed

    @property
    def suppressed(self) -> bool:
        return self.suppressed_reason is not None

    def text(self) -> str:
        where = f"{self.target}:{self.line}" if self.line else self.target
        if self.suppressed:
            return f"SKIP  [{self.tool}] {where} {self.rule} {self.message} (suppressed: {self.suppressed_reason})"
        return f"FAIL  [{self.tool}] {where} {self.rule} {self.message}"


@dataclass
class ToolReport:
    tool: str
    targets: list[str] = field(default_factory=list)
    checks: int = 0
    failed: int = 0
    findings: list[Finding] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> int:
        return self.checks - self.failed

    @property
    def suppressed(self) -> int:
        return sum(1 for f in self.findings if f.suppressed)


class ScanError(RuntimeError):
    """A scanner could not run or its output could not be read: no score can be given."""


# ------------------------------------------------------------------ discovery

def _walk(root: Path, base: str) -> Iterable[Path]:
    top = root / base
    if not top.exists():
        return
    if top.is_file():
        yield top
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".venv"))
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def find_dockerfiles(root: Path) -> list[str]:
    return sorted(_rel(root, p) for p in _walk(root, ".")
                  if p.name == "Dockerfile" or p.name.startswith("Dockerfile.") or p.name.endswith(".Dockerfile"))


def find_workflows(root: Path) -> list[str]:
    wf = root / ".github" / "workflows"
    return sorted(_rel(root, p) for p in wf.glob("*.y*ml")) if wf.is_dir() else []


def find_rendered(root: Path, targets: Iterable[str], exts=(".yaml", ".yml", ".json")) -> list[str]:
    out = []
    rendered = root / "build" / "rendered"
    for target in targets:
        for p in sorted(rendered.glob(f"*/{target}/**/*")):
            if p.is_file() and p.suffix in exts:
                out.append(_rel(root, p))
    return out


def find_compose(root: Path) -> list[tuple[str, bool, bool]]:
    """(path, is_swarm_stack, is_local) for Compose and stack files."""
    found = []
    for p in _walk(root, "deploy"):
        if p.suffix not in (".yaml", ".yml"):
            continue
        try:
            doc = compose_rules.yaml.safe_load(p.read_text(encoding="utf-8"))
        except (compose_rules.yaml.YAMLError, UnicodeDecodeError):
            doc = {"services": None}  # check_file reports it
        if isinstance(doc, dict) and "services" in doc:
            rel = _rel(root, p)
            swarm = "swarm" in rel.split("/") or "stack" in p.name
            found.append((rel, swarm, rel.startswith("deploy/local/")))
    for rel in find_rendered(root, ["swarm"], exts=(".yaml", ".yml")):
        found.append((rel, True, False))
    return found


def find_python(root: Path) -> list[str]:
    files = [_rel(root, p) for base in PYTHON_DIRS for p in _walk(root, base) if p.suffix == ".py"]
    files += [_rel(root, p) for p in sorted(root.glob("*.py"))]
    return sorted(set(files))


def find_config(root: Path) -> list[str]:
    return sorted(_rel(root, p) for p in root.glob("Pulumi*.yaml"))


# ------------------------------------------------------------------ running tools

def _bin(name: str) -> str:
    candidate = Path(sys.prefix) / "bin" / name
    if candidate.exists():
        return str(candidate)
    raise ScanError(f"{name} is not installed in {sys.prefix}; run security/scan (it syncs .venv-scan)")


def _run(argv: list[str], root: Path, ok_codes=(0, 1), env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, env=env,  # nosec B603 # argv list from _bin() or this venv's python, no shell
                              timeout=TOOL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ScanError(f"{argv[0]} timed out after {TOOL_TIMEOUT}s") from exc
    if proc.returncode not in ok_codes:
        raise ScanError(f"{' '.join(argv[:3])} ... exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


def _json(proc: subprocess.CompletedProcess, tool: str):
    try:
        return json.loads(proc.stdout or "null")
    except json.JSONDecodeError as exc:
        raise ScanError(f"{tool} printed no JSON ({exc}): {proc.stdout[:500]} {proc.stderr[-1000:]}") from exc


# ------------------------------------------------------------------ hadolint

PRAGMA_RE = re.compile(r"^\s*#\s*hadolint\s+(?:global\s+)?ignore=(?P<codes>[A-Z0-9, ]+)\s*$")


def hadolint_rule_ids(binary: str) -> set[str]:
    # hadolint cannot list its rules; the pinned binary carries its DLxxxx rule table as literals.
    data = Path(binary).read_bytes()
    rules = {m.decode() for m in re.findall(rb"DL[34]\d{3}", data)}
    if len(rules) < 50:
        raise ScanError(f"found only {len(rules)} hadolint rule ids in {binary}; cannot count checks")
    return rules


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


def run_hadolint(root: Path, files: list[str]) -> ToolReport:
    report = ToolReport("hadolint", targets=files)
    if not files:
        report.note = "no Dockerfile found"
        return report
    binary = _bin("hadolint")
    rules = hadolint_rule_ids(binary)
    enforced = _json(_run([binary, "-f", "json", "--no-fail", *files], root), "hadolint")
    everything = _json(_run([binary, "-f", "json", "--no-fail", "--disable-ignore-pragma", *files], root), "hadolint")
    reported = {(f["file"], f["line"], f["code"]) for f in enforced}
    failed: set[tuple[str, str]] = set()
    for f in everything:
        key = (f["file"], f["line"], f["code"])
        reason = None
        if key not in reported:
            lines = (root / f["file"]).read_text(encoding="utf-8").splitlines()
            reason = hadolint_reason(lines, f["line"], f["code"])
            if reason is None:
                f["message"] += " [ignore pragma without a reason comment on the line above it]"
        finding = Finding("hadolint", f["code"], f["file"], f["line"], f"{f['level']}: {f['message']}", reason)
        report.findings.append(finding)
        if not finding.suppressed:
            failed.add((f["file"], f["code"]))
        rules.add(f["code"])  # ShellCheck (SCxxxx) findings join the rule set when they occur
    report.checks = len(files) * len(rules)
    report.failed = len(failed)
    return report


# ------------------------------------------------------------------ checkov

NO_REASON = {"", "no comment provided"}


def run_checkov(root: Path, scanned: dict[str, list[str]], secrets_files: list[str]) -> list[ToolReport]:
    """`scanned` maps a checkov framework to the files it must check; every file is also secrets-scanned.

    A file its framework produced no result for was not scanned (checkov skips files it cannot
    parse or that fail its schema, silently): that is a failed check, never a silent pass."""
    all_files = sorted({f for files in scanned.values() for f in files} | set(secrets_files))
    if not all_files:
        return [ToolReport("checkov", note="nothing to scan")]
    argv = [sys.executable, "-m", "security.checkov_compat", "--skip-download", "-o", "json",
            "--framework", *sorted(set(scanned) | {"secrets"})]
    for f in all_files:
        argv += ["-f", f]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    data = _json(_run(argv, root, env=env), "checkov")
    results = data if isinstance(data, list) else [data]
    reports: dict[str, ToolReport] = {kind: ToolReport(f"checkov/{kind}") for kind in scanned}
    secrets_failed: set[str] = set()
    for res in results:
        if not isinstance(res, dict) or "check_type" not in res:
            continue
        kind = res["check_type"]
        rep = reports.setdefault(kind, ToolReport(f"checkov/{kind}"))
        body = res.get("results") or {}
        for path in body.get("parsing_errors", []):
            rep.findings.append(Finding(rep.tool, "PARSE", _relpath(root, path), 0, "checkov could not parse this file"))
            rep.checks += 1
            rep.failed += 1
        for item in body.get("passed_checks", []):
            rep.checks += 1
            rep.targets.append(_relpath(root, item["file_path"]))
        for state in ("failed_checks", "skipped_checks"):
            for item in body.get(state, []):
                target = _relpath(root, item["file_path"])
                rep.targets.append(target)
                reason = None
                if state == "skipped_checks":
                    reason = (item.get("check_result") or {}).get("suppress_comment") or ""
                    reason = reason.strip() if reason.strip().lower() not in NO_REASON else None
                line = (item.get("file_line_range") or [0])[0]
                message = f"{item.get('check_name', '')} ({item.get('resource', '')})"
                if state == "skipped_checks" and reason is None:
                    message += " [checkov:skip without a reason]"
                finding = Finding(rep.tool, item["check_id"], target, line, message, reason)
                rep.findings.append(finding)
                if kind == "secrets":
                    if not finding.suppressed:
                        secrets_failed.add(target)
                    continue
                rep.checks += 1
                rep.failed += 0 if finding.suppressed else 1
    for kind, files in scanned.items():
        rep = reports[kind]
        seen = set(rep.targets) | {f.target for f in rep.findings}
        for f in files:
            if f not in seen:
                rep.findings.append(Finding(rep.tool, "NOT_SCANNED", f, 0,
                                            f"checkov's {kind} framework produced no result for this file "
                                            "(unparseable, or rejected by its schema)"))
                rep.checks += 1
                rep.failed += 1
        rep.targets = sorted(set(rep.targets) | set(files))
        if not files:
            rep.note = "no file to scan"
    secrets = reports.setdefault("secrets", ToolReport("checkov/secrets"))
    secrets.checks = len(all_files)
    secrets.failed = len(secrets_failed)
    secrets.targets = all_files
    return [reports[k] for k in sorted(reports)]


def _relpath(root: Path, path: str) -> str:
    p = Path(path)
    if p.is_absolute() and p.is_relative_to(root):
        return p.relative_to(root).as_posix()
    return path.lstrip("/")


# ------------------------------------------------------------------ compose rules

def run_compose(root: Path, files: list[tuple[str, bool, bool]]) -> ToolReport:
    report = ToolReport("compose", targets=[f for f, _, _ in files])
    if not files:
        report.note = "no Compose or stack file found"
    for rel, swarm, local in files:
        try:
            results = list(compose_rules.check_file(root / rel, rel, swarm=swarm, local=local))
        except compose_rules.ComposeError as exc:
            report.findings.append(Finding("compose", "PARSE", rel, 0, str(exc)))
            report.checks += 1
            report.failed += 1
            continue
        for r in results:
            report.checks += 1
            if r.ok:
                continue
            desc = compose_rules.RULES[r.rule]
            message = f"service {r.service}: {r.message} (rule: {desc})"
            reason = r.suppressed_reason or None
            if r.suppressed_reason is not None and not reason:
                message += " [csm-scan:skip without a reason]"
            report.findings.append(Finding("compose", r.rule, rel, r.line, message, reason))
            report.failed += 0 if reason else 1
    return report


# ------------------------------------------------------------------ bandit

NOSEC_RE = re.compile(r"#\s*nosec\b:?\s*(?P<ids>(?:B\d{3}[\s,]*)*)(?P<rest>.*)$")


def bandit_reason(line_text: str, test_id: str) -> str | None:
    m = NOSEC_RE.search(line_text)
    if not m:
        return None
    ids = re.findall(r"B\d{3}", m.group("ids"))
    reason = m.group("rest").strip(" #:-\t")
    return reason if test_id in ids and len(reason) >= 8 else None


def bandit_test_ids() -> set[str]:
    from bandit.core import extension_loader  # only in the scan venv

    return set(extension_loader.MANAGER.plugins_by_id) | set(extension_loader.MANAGER.blacklist_by_id)


def run_bandit(root: Path, files: list[str]) -> ToolReport:
    report = ToolReport("bandit", targets=files)
    if not files:
        report.note = "no Python file found"
        return report
    binary = _bin("bandit")
    enforced = _json(_run([binary, "-f", "json", "-q", *files], root), "bandit")
    everything = _json(_run([binary, "-f", "json", "-q", "--ignore-nosec", *files], root), "bandit")
    if enforced.get("errors") or everything.get("errors"):
        for err in enforced.get("errors", []):
            report.findings.append(Finding("bandit", "ERROR", err.get("filename", "?"), 0, err.get("reason", "")))
    for r in enforced["results"] + everything["results"]:
        r["filename"] = r["filename"].removeprefix("./")
    reported = {(r["filename"], r["line_number"], r["test_id"]) for r in enforced["results"]}
    failed: set[tuple[str, str]] = set()
    for r in everything["results"]:
        key = (r["filename"], r["line_number"], r["test_id"])
        reason = None
        message = f"{r['issue_severity']}/{r['issue_confidence']}: {r['issue_text']}"
        if key not in reported:
            lines = (root / r["filename"]).read_text(encoding="utf-8").splitlines()
            reason = bandit_reason(lines[r["line_number"] - 1], r["test_id"])
            if reason is None:
                message += f" [nosec without the test id {r['test_id']} and a reason]"
        report.findings.append(Finding("bandit", r["test_id"], r["filename"], r["line_number"], message, reason))
        if reason is None:
            failed.add((r["filename"], r["test_id"]))
    tests = bandit_test_ids()
    report.checks = len(files) * len(tests) + len(enforced.get("errors", []))
    report.failed = len(failed) + len(enforced.get("errors", []))
    return report


# ------------------------------------------------------------------ render

def run_render(root: Path) -> ToolReport:
    """What `make render` runs, so the Kubernetes and Swarm files scanned are the ones the program deploys.

    The renderer is called directly with the dev venv's Python (not through make, whose venv
    prerequisite would re-sync .venv under a running test session)."""
    report = ToolReport("render")
    if not (root / "components" / "render_all.py").exists():
        report.note = "components/render_all.py not present: scanning whatever is in build/rendered"
        return report
    makefile = root / "Makefile"
    m = re.search(r"^STACKS\s*\??=\s*(.+)$", makefile.read_text(), re.M) if makefile.exists() else None
    stacks = m.group(1).split() if m else ["dev", "prod"]
    python = root / ".venv" / "bin" / "python"
    report.checks = 1
    report.targets = [f"components.render_all {' '.join(stacks)}"]
    if not python.exists():
        report.failed = 1
        report.findings.append(Finding("render", "RENDER", "components/render_all.py", 0,
                                       ".venv is missing: run make venv so the manifests can be rendered"))
        return report
    try:
        proc = subprocess.run([str(python), "-m", "components.render_all", *stacks], cwd=root,  # nosec B603 # fixed argv: the repository's own renderer
                              capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess([], 124, "", "timed out")
    if proc.returncode != 0:
        report.failed = 1
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        report.findings.append(Finding("render", "RENDER", "components/render_all.py", 0,
                                       f"exited {proc.returncode}: {' | '.join(tail)}"))
    return report


# ------------------------------------------------------------------ score and reports

def score(reports: list[ToolReport]) -> tuple[float, int, int]:
    checks = sum(r.checks for r in reports)
    passed = sum(r.passed for r in reports)
    if checks == 0:
        return 0.0, 0, 0
    return math.floor(passed * 1000 / checks) / 10, passed, checks


def markdown(reports: list[ToolReport], value: float, passed: int, checks: int) -> str:
    lines = ["# Security scan", "", f"Score: **{value:g}/100** ({passed} of {checks} checks passed), "
             f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
             "| tool | targets | checks | passed | failed | suppressed | note |", "|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| {r.tool} | {len(r.targets)} | {r.checks} | {r.passed} | {r.failed} | {r.suppressed} | {r.note} |")
    failing = [f for r in reports for f in r.findings if not f.suppressed]
    suppressed = [f for r in reports for f in r.findings if f.suppressed]
    lines += ["", f"## Findings ({len(failing)})", ""]
    lines += [f"- `{f.tool}` {f.target}:{f.line} **{f.rule}** {f.message}" for f in failing] or ["None."]
    lines += ["", f"## Suppressed in place, with their reasons ({len(suppressed)})", ""]
    lines += [f"- `{f.tool}` {f.target}:{f.line} **{f.rule}**: {f.suppressed_reason}" for f in suppressed] or ["None."]
    lines += ["", "## Targets", ""]
    lines += [f"- {r.tool}: {', '.join(r.targets) or '-'}" for r in reports]
    return "\n".join(lines) + "\n"


def scan(root: Path, render: bool = True) -> list[ToolReport]:
    reports = []
    if render:
        reports.append(run_render(root))
    dockerfiles = find_dockerfiles(root)
    k8s = find_rendered(root, RENDERED_K8S)
    workflows = find_workflows(root)
    compose = find_compose(root)
    python = find_python(root)
    reports.append(run_hadolint(root, dockerfiles))
    secrets_scope = dockerfiles + k8s + workflows + [c for c, _, _ in compose] + python + find_config(root)
    frameworks = {"dockerfile": dockerfiles, "kubernetes": k8s, "github_actions": workflows}
    reports += run_checkov(root, frameworks, secrets_scope)
    reports.append(run_compose(root, compose))
    reports.append(run_bandit(root, python))
    return reports


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="security/scan", description="Offline security scan with a score out of 100.")
    p.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: current directory)")
    p.add_argument("--out", type=Path, help="report directory (default: <root>/build/scan)")
    p.add_argument("--min-score", type=float, default=100.0, help="exit 1 below this score (default 100)")
    p.add_argument("--no-render", action="store_true", help="do not run `make render` first")
    args = p.parse_args(argv)
    root = args.root.resolve()
    out = args.out or root / "build" / "scan"
    try:
        reports = scan(root, render=not args.no_render)
    except ScanError as exc:
        print(f"scan: error: {exc}", file=sys.stderr)
        return 2
    value, passed, checks = score(reports)
    for r in reports:
        for f in r.findings:
            print(f.text())
    by_tool = defaultdict(int)
    for r in reports:
        by_tool[r.tool] += r.checks
        print(f"{r.tool:<22} checks={r.checks:<6} passed={r.passed:<6} failed={r.failed:<4} "
              f"suppressed={r.suppressed:<3} targets={len(r.targets)} {r.note}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(reports, value, passed, checks))
    (out / "report.json").write_text(json.dumps({
        "score": value, "passed": passed, "checks": checks,
        "tools": [dict(asdict(r), passed=r.passed, suppressed=r.suppressed) for r in reports],
    }, indent=2) + "\n")
    print(f"score: {value:g}/100 ({passed} of {checks} checks passed); report: {_display(out / 'report.md', root)}")
    if checks == 0:
        print("scan: error: nothing was scanned", file=sys.stderr)
        return 2
    return 0 if value >= args.min_score and (args.min_score < 100 or passed == checks) else 1


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
