"""A case's outcome (figures + checks) and the markdown report of a run."""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reliability.load import Stats


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class CaseResult:
    """What one fault or load case measured. ``sent``/``failed`` count the client requests of the
    case's load; ``recovery_s`` is the case's own recovery figure (named in ``recovery_of``)."""

    case: str
    title: str
    sent: int = 0
    failed: int = 0
    recovery_s: float | None = None
    recovery_of: str = ""
    figures: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the case could not run to the end (a crash, a missing prerequisite)

    @property
    def availability(self) -> float:
        return (self.sent - self.failed) / self.sent if self.sent else math.nan

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)

    def count(self, stats: Stats) -> None:
        self.sent += stats.sent
        self.failed += stats.failed

    def figure(self, name: str, value: object) -> None:
        self.figures[name] = value if isinstance(value, str) else _fmt(value)

    def failures(self) -> str:
        lines = [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]
        if self.error:
            lines.append(f"error: {self.error}")
        if not self.checks and not self.error:
            lines.append("the case asserted nothing")
        return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _availability(result: CaseResult) -> str:
    if not result.sent:
        return "n/a"
    return f"{100 * result.availability:.2f}%"


def render(results: list[CaseResult], profile: str, started: float) -> str:
    lines = [
        "# CSM reliability report",
        "",
        f"Profile `{profile}`, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(started))}, "
        f"{time.time() - started:.0f} s, on {platform.machine()} ({_cpus()} CPUs). "
        "Every figure below was measured on the real local engine; traffic went to 127.0.0.1 only.",
        "",
        "| Case | Requests sent | Failed | Availability | Recovery (s) | Other figures | Result |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        recovery = "n/a" if r.recovery_s is None else f"{r.recovery_s:.2f}"
        if r.recovery_of and r.recovery_s is not None:
            recovery += f" ({r.recovery_of})"
        other = "; ".join(f"{k} {v}" for k, v in r.figures.items()) or "-"
        verdict = "pass" if r.passed else ("error" if r.error else "FAIL")
        lines.append(
            f"| {r.title} | {r.sent} | {r.failed} | {_availability(r)} | {recovery} | "
            f"{other.replace('|', '/')} | {verdict} |"
        )
    lines += ["", "## Checks", ""]
    for r in results:
        lines.append(f"### {r.title} ({r.seconds:.0f} s)")
        lines.append("")
        for c in r.checks:
            lines.append(f"- [{'x' if c.passed else ' '}] {c.name}" + (f": {c.detail}" if c.detail else ""))
        if r.error:
            lines.append(f"- [ ] the case ran to its end: {r.error}")
        for note in r.notes:
            lines.append(f"- note: {note}")
        lines.append("")
    return "\n".join(lines)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def write(results: list[CaseResult], path: Path, profile: str, started: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results, profile, started))
    path.with_suffix(".json").write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))
