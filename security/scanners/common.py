"""What every scanner module shares: a finding, a tool's report, and running a pinned binary."""

from __future__ import annotations

import json
import subprocess  # nosec B404 # runs the pinned scanners from the scan venv with argv lists, never a shell
import sys
from dataclasses import dataclass, field
from pathlib import Path

TOOL_TIMEOUT = 600


class ScanError(RuntimeError):
    """A scanner could not run or its output could not be read: the gate cannot decide."""


@dataclass
class Finding:
    tool: str
    rule: str
    target: str
    line: int
    message: str
    suppressed_reason: str | None = None
    # A suppression comment is present but gives no reason, so it is not honoured.
    unreasoned: bool = False

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
    """What one tool was given, what it said about its own run, and what it found."""

    tool: str
    scope: str  # what the tool looks at, in words
    unit: str = "files"  # what `files` are, for the summary line
    version: str = ""
    files: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)  # counts the tool itself reported
    findings: list[Finding] = field(default_factory=list)
    note: str = ""

    @property
    def unsuppressed(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]

    @property
    def suppressed(self) -> list[Finding]:
        return [f for f in self.findings if f.suppressed]

    def summary(self) -> str:
        name = f"{self.tool} {self.version}".strip()
        scanned = f"{len(self.files)} {self.unit}"
        stats = ", ".join(f"{v} {k}" for k, v in self.stats.items())
        unreasoned = sum(f.unreasoned for f in self.findings)
        found = f"{len(self.unsuppressed)} unsuppressed"
        if unreasoned:
            found += f" ({unreasoned} suppressed without a reason)"
        found += f", {len(self.suppressed)} suppressed with a reason"
        return "  ".join(
            part for part in (f"{name:<30}", f"{scanned:<20}", found, stats and f"[{stats}]", self.note) if part
        )


def tool_bin(name: str) -> str:
    candidate = Path(sys.prefix) / "bin" / name
    if candidate.exists():
        return str(candidate)
    raise ScanError(f"{name} is not installed in {sys.prefix}; run security/scan (it syncs .venv-scan)")


def run(argv: list[str], root: Path, ok_codes=(0, 1), env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(  # nosec B603 # argv list from tool_bin() or this venv's python, no shell
            argv,
            cwd=root,
            capture_output=True,
            text=True,
            env=env,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ScanError(f"{argv[0]} timed out after {TOOL_TIMEOUT}s") from exc
    if proc.returncode not in ok_codes:
        raise ScanError(f"{' '.join(argv[:3])} ... exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


def read_json(proc: subprocess.CompletedProcess, tool: str):
    try:
        return json.loads(proc.stdout or "null")
    except json.JSONDecodeError as exc:
        raise ScanError(f"{tool} printed no JSON ({exc}): {proc.stdout[:500]} {proc.stderr[-1000:]}") from exc
