"""Not a scanner: renders every target's manifests, as `make render` does, so the Kubernetes and Swarm
files scanned are the ones the program deploys.

The renderer is called directly with the dev venv's Python (not through make, whose venv
prerequisite would re-sync .venv under a running test session)."""

from __future__ import annotations

import re
import subprocess  # nosec B404 # runs the repository's own renderer with a fixed argv, never a shell
from pathlib import Path

from security.scanners.common import TOOL_TIMEOUT, Finding, ToolReport
from security.scanners.files import rendered


def stacks(root: Path) -> list[str]:
    makefile = root / "Makefile"
    m = re.search(r"^STACKS\s*\??=\s*(.+)$", makefile.read_text(), re.M) if makefile.exists() else None
    return m.group(1).split() if m else ["dev", "prod"]


def run(root: Path) -> ToolReport:
    names = stacks(root)
    report = ToolReport("render", f"components.render_all {' '.join(names)}", "stacks rendered")
    if not (root / "components" / "render_all.py").exists():
        report.note = "components/render_all.py not present: scanning whatever is in build/rendered"
        return report
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        report.findings.append(
            Finding(
                "render",
                "RENDER",
                "components/render_all.py",
                0,
                ".venv is missing: run make venv so the manifests can be rendered",
            )
        )
        return report
    try:
        proc = subprocess.run(  # nosec B603 # fixed argv: the repository's own renderer
            [str(python), "-m", "components.render_all", *names],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess([], 124, "", "timed out")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        report.findings.append(
            Finding("render", "RENDER", "components/render_all.py", 0, f"exited {proc.returncode}: {' | '.join(tail)}")
        )
        return report
    report.files = names
    report.stats = {"files written": len(rendered(root, ["*"], exts=(".yaml", ".yml", ".json")))}
    return report
