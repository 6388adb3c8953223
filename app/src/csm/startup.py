"""Where the start-up time goes: the phases of one start, logged once when the service is first ready."""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)


def process_age() -> float | None:
    """Seconds since the kernel created this process (clock-tick resolution); None where /proc is not."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
            now = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(now - ticks / os.sysconf("SC_CLK_TCK"), 0.0)


class Startup:
    """Phase durations in seconds, in the order they happened; ``interpreter_s`` is the time from the
    process's creation to this object's (the interpreter's start and the first imports)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        age = process_age()
        if age is not None:
            self.phases["interpreter_s"] = age
        self._origin = time.perf_counter() - (age or 0.0)
        self._mark = time.perf_counter()
        self._logged = False

    def phase(self, name: str, seconds: float | None = None) -> None:
        """Ends phase ``name`` now (its time: since the previous phase ended), or records ``seconds``."""
        now = time.perf_counter()
        self.phases[name] = round(seconds if seconds is not None else now - self._mark, 4)
        self._mark = now

    def ready(self) -> None:
        """The first ready verdict: logs every phase and the total since the process was created."""
        if self._logged:
            return
        self._logged = True
        total = time.perf_counter() - self._origin
        phases = {name: round(value, 4) for name, value in self.phases.items()}
        log.info(
            "started", extra={**phases, "other_s": round(total - sum(phases.values()), 4), "total_s": round(total, 4)}
        )
