"""Docker's restart backoff and the checks of a crash-looping container against it (pure arithmetic, unit-tested)."""

from __future__ import annotations

from dataclasses import dataclass

from reliability.report import CaseResult
from reliability.stack import Event, Events

# Docker's restart manager: the first delay, its cap, and the run length that resets it.
DOCKER_FIRST_DELAY, DOCKER_MAX_DELAY, DOCKER_RESET_AFTER = 0.1, 60.0, 10.0


def docker_delays(runs: list[float]) -> list[float]:
    """The delays Docker's restart manager waits before each restart, given how long each run that
    ended lasted: 100 ms doubling up to 1 min, back to 100 ms after a run of 10 s or more."""
    delays: list[float] = []
    delay = 0.0
    for lasted in runs:
        if lasted >= DOCKER_RESET_AFTER:
            delay = 0.0
        delay = DOCKER_FIRST_DELAY if delay == 0 else min(delay * 2, DOCKER_MAX_DELAY)
        delays.append(delay)
    return delays


@dataclass
class Restarts:
    starts: list[float]
    deaths: list[Event]
    runs: list[float]  # per death: how long that run lasted (start to die); inf when it began before the watch
    gaps: list[float]  # per restart: die to the next start, the policy's delay plus the engine's own time

    @classmethod
    def of(cls, events: Events) -> Restarts:
        starts = sorted(e.time for e in events.of("start"))
        deaths = sorted(events.of("die"), key=lambda e: e.time)
        runs, gaps = [], []
        for death in deaths:
            began = max((t for t in starts if t <= death.time), default=None)
            following = min((t for t in starts if t > death.time), default=None)
            if following is None:
                break
            runs.append(death.time - began if began is not None else float("inf"))
            gaps.append(following - death.time)
        return cls(starts, deaths, runs, gaps)

    def describe(self) -> str:
        return ", ".join(f"{g:.1f}" for g in self.gaps) or "none"


def check_backoff(result: CaseResult, restarts: Restarts, window: float) -> None:
    """Restarted by the policy, with its backoff: each delay at least Docker's (minus 20% for clock
    noise), and no more restarts in the window than that backoff allows (a tight loop would
    restart once per run)."""
    expected = docker_delays(restarts.runs)
    result.figure("restarts", len(restarts.gaps))
    result.figure("restart delays (s)", restarts.describe())
    result.check(
        "the orchestrator restarts it (restart policy)",
        len(restarts.gaps) >= 3,
        f"{len(restarts.gaps)} restarts in {window:.0f} s",
    )
    short = [(gap, want) for gap, want in zip(restarts.gaps, expected, strict=True) if gap < 0.8 * want]
    result.check(
        "backoff holds: every delay at least Docker's doubling one (0.1 s x 2^n, reset after 10 s up)",
        not short and bool(restarts.gaps),
        f"delays {restarts.describe()} s; expected at least {', '.join(f'{e:.1f}' for e in expected)}",
    )
    known = [r for r in restarts.runs if r != float("inf")]
    mean_run = sum(known) / len(known) if known else 1.0
    allowed = starts_with_backoff(mean_run, window)
    tight_loop = int(window / max(mean_run, 0.1)) + 1
    result.check(
        "no restart storm: no more starts than the backoff allows",
        len(restarts.starts) <= allowed + 1,
        f"{len(restarts.starts)} starts in {window:.0f} s (runs of {mean_run:.1f} s); with the backoff at "
        f"most {allowed}, a tight loop would make {tight_loop}",
    )


def starts_with_backoff(run_seconds: float, window: float) -> int:
    """How many times a container whose runs last ``run_seconds`` starts within ``window`` under
    Docker's backoff (the first start included)."""
    elapsed, starts, delay = 0.0, 0, 0.0
    while elapsed < window:
        starts += 1
        elapsed += run_seconds
        delay = (
            DOCKER_FIRST_DELAY if delay == 0 or run_seconds >= DOCKER_RESET_AFTER else min(2 * delay, DOCKER_MAX_DELAY)
        )
        elapsed += delay
    return starts
