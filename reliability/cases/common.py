"""What every case shares: the profiles, the thresholds of issue 8, the build folder, the API mix."""

from __future__ import annotations

from dataclasses import dataclass

from reliability import load as L
from reliability.stack import ROOT

BUILD = ROOT / "build" / "reliability"


@dataclass(frozen=True)
class Profile:
    name: str
    outage_seconds: float = 30.0  # the issue's figure
    steady_rate: float = 10.0  # requests/s of the background load during faults
    load_seconds: float = 30.0
    load_concurrency: int = 8
    restart_window: float = 20.0  # how long a crash-looping container is watched
    memory_window: float = 45.0
    fuzz_examples: int = 10
    fuzz_timeout: float = 600.0


PROFILES = {
    "ci": Profile("ci"),
    "full": Profile("full", load_seconds=60.0, restart_window=40.0, fuzz_examples=25),
    "soak": Profile("soak", load_seconds=600.0, restart_window=40.0, fuzz_examples=50, fuzz_timeout=1500.0),
}

# The thresholds of issue 8.
READY_AFTER_CASSANDRA_S = 5.0
SWARM_AVAILABILITY = 0.999


def api_mix() -> L.Operation:
    return L.mix((L.issue_and_read, 1), (L.read, 2))


def first_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(lines[:count])[:400]
