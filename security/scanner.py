"""The offline security scan behind `make scan` (run through security/scan, in the .venv-scan venv).

Each tool has its module in security/scanners/; this runs them in order and applies the gate:
zero unsuppressed findings, where a suppression counts only when written in place with a reason,
and a file a tool could not scan is a finding. Per tool it prints what was scanned and found;
build/scan/ gets report.md, report.json and sarif/<tool>.sarif.

Exit: 0 the gate passed, 1 it failed, 2 a scanner could not run or nothing was scanned.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from security.scanners import bandit, checkov, compose, files, hadolint, render, report
from security.scanners.common import ScanError, ToolReport


def scan(root: Path, render_first: bool = True) -> list[ToolReport]:
    reports = [render.run(root)] if render_first else []
    dockerfiles, k8s, workflows = files.dockerfiles(root), files.rendered(root), files.workflows(root)
    compose_files, python = files.compose(root), files.python(root)
    reports.append(hadolint.scan(root, dockerfiles))
    secrets_scope = dockerfiles + k8s + workflows + [c for c, _, _ in compose_files] + python + files.stack_config(root)
    frameworks = {"dockerfile": dockerfiles, "kubernetes": k8s, "github_actions": workflows}
    reports += checkov.scan(root, frameworks, secrets_scope)
    reports.append(compose.scan(root, compose_files))
    reports.append(bandit.scan(root, python))
    return reports


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="security/scan",
        description="Offline security scan: hadolint, checkov, "
        "the Compose rules and bandit; passes with zero unsuppressed findings.",
    )
    p.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: current directory)")
    p.add_argument("--out", type=Path, help="report directory (default: <root>/build/scan)")
    p.add_argument("--no-render", action="store_true", help="do not render the manifests first")
    args = p.parse_args(argv)
    root = args.root.resolve()
    out = args.out or root / "build" / "scan"
    try:
        reports = scan(root, render_first=not args.no_render)
    except ScanError as exc:
        print(f"scan: error: {exc}", file=sys.stderr)
        return 2
    result = report.gate(reports)
    for r in reports:
        for f in r.findings:
            print(f.text())
    for r in reports:
        print(r.summary())
    report.write(out, reports, result)
    print(
        f"{result.line()}; report: {_display(out / 'report.md', root)}, SARIF per tool in "
        f"{_display(out / 'sarif', root)}/"
    )
    if not any(r.files for r in reports if r.tool != "render"):
        print("scan: error: nothing was scanned", file=sys.stderr)
        return 2
    return 0 if result.passed else 1


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
