"""The pure arithmetic of the restart cases (reliability/cases/restarts.py): Docker's backoff, the
restart statistics read from container events, and the checks built on them."""

from __future__ import annotations

import pytest

from reliability.cases.restarts import Restarts, check_backoff, docker_delays, starts_with_backoff
from reliability.report import CaseResult
from reliability.stack import Event


def test_delays_double_from_100_ms_up_to_a_minute():
    assert docker_delays([1.0] * 12) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 60, 60])


def test_a_run_of_10_s_or_more_resets_the_delay():
    assert docker_delays([1.0, 1.0, 1.0, 10.0, 1.0]) == pytest.approx([0.1, 0.2, 0.4, 0.1, 0.2])


def test_runs_of_10_s_always_restart_after_100_ms():
    assert starts_with_backoff(10.0, 50.0) == 5  # 5 x (10 s + 0.1 s) reaches 50.5 s


def test_short_runs_start_fewer_times_than_a_tight_loop():
    # 0.5 s runs start at 0, 0.6, 1.3, 2.2, 3.5, 5.6 and 9.3 s (the next at 16.2): 7 in 15 s; a tight loop makes 30.
    assert starts_with_backoff(0.5, 15.0) == 7


class Recorded:
    """Container events as Events.of returns them."""

    def __init__(self, *pairs: tuple[str, float]) -> None:
        self.events = [Event(t, action, {}) for action, t in pairs]

    def of(self, action: str) -> list[Event]:
        return [e for e in self.events if e.action == action]


def test_restarts_pair_each_death_with_its_run_and_the_next_start():
    events = Recorded(("start", 0.0), ("die", 1.0), ("start", 1.2), ("die", 2.0), ("start", 2.5), ("die", 3.0))
    restarts = Restarts.of(events)  # type: ignore[arg-type]
    assert restarts.runs == pytest.approx([1.0, 0.8]) and restarts.gaps == pytest.approx([0.2, 0.5])
    assert restarts.describe() == "0.2, 0.5"


def test_a_run_that_began_before_the_watch_has_no_known_length():
    restarts = Restarts.of(Recorded(("die", 5.0), ("start", 5.1)))  # type: ignore[arg-type]
    assert restarts.runs == [float("inf")] and restarts.gaps == pytest.approx([0.1])


def checks(gaps: list[float], run: float = 1.0) -> dict[str, bool]:
    starts, t, pairs = [], 0.0, []
    for gap in gaps:
        pairs += [("start", t), ("die", t + run)]
        starts.append(t)
        t += run + gap
    pairs.append(("start", t))
    result = CaseResult("restarts", "test")
    check_backoff(result, Restarts.of(Recorded(*pairs)), window=t + 1)  # type: ignore[arg-type]
    return {c.name.split(":")[0]: c.passed for c in result.checks}


def test_restarts_with_dockers_backoff_pass_every_check():
    assert all(checks([0.1, 0.2, 0.4, 0.8]).values())


def test_restarts_faster_than_the_backoff_fail_it():
    assert checks([0.1, 0.1, 0.1, 0.1])["backoff holds"] is False


def test_fewer_than_three_restarts_fail_the_restart_check():
    assert checks([0.1, 0.2])["the orchestrator restarts it (restart policy)"] is False
