"""bench.benchmark's arithmetic and report, on made-up figures (the benchmark itself runs with `make bench`)."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    from bench import benchmark

    return benchmark


def round_stat(p99: float, load: float) -> dict:
    return {
        "requests": 6000,
        "completed": 6000,
        "sent_per_s": 200.0,
        "statuses": {"200": 6000},
        "errors": {},
        "p50_ms": 1.0,
        "p90_ms": 2.0,
        "p99_ms": p99,
        "max_ms": 20.0,
        "load_average": load,
    }


def results(live_p99: float, load: float) -> dict:
    image = {
        "start_ready_runs": [3.0],
        "docker_stats": "50MiB / 2GiB",
        "start_ready_s": 3.0,
        "live": [round_stat(live_p99, load)],
        "ready": [round_stat(3.0, 0.5)],
        "live_p99_ms": live_p99,
        "ready_p99_ms": 3.0,
        "size_mb": 100.0,
    }
    return {
        "started": "2026-11-29 00:00 UTC",
        "rate": 200.0,
        "duration": 30.0,
        "rounds": 1,
        "problems": [],
        "host": {"cpus": 2, "platform": "linux/amd64", "docker": "26", "load_start": "0.5", "load_end": "0.5"},
        "csm": image,
        "baseline": {**image, "size_mb": 268.0},
    }


def test_percentile_is_the_nearest_rank(bench: ModuleType) -> None:
    """bench and reliability share one percentile (reliability.load's)."""
    ordered = [float(n) for n in range(1, 101)]
    assert [bench.percentile(ordered, q) for q in (0.5, 0.99, 1.0)] == [50, 99, 100]
    assert bench.percentile([7.0], 0.99) == 7.0


def test_go_timestamps_keep_nanoseconds_and_cross_the_hour(bench: ModuleType) -> None:
    before = bench.seconds_of("2026-11-29T03:59:59.999999999Z")
    after = bench.seconds_of("2026-11-29T04:00:00.5Z")
    assert after - before == pytest.approx(0.500000001, abs=1e-6)
    assert bench.seconds_of("2026-11-29T04:00:00+01:00") == bench.seconds_of("2026-11-29T04:00:00Z")


def test_a_p99_over_the_target_fails_in_the_report(bench: ModuleType) -> None:
    lines = bench.report(results(live_p99=12.5, load=0.5)).splitlines()
    live = next(line for line in lines if line.startswith("| /health/live p99"))
    ready = next(line for line in lines if line.startswith("| /health/ready p99"))
    assert "**FAIL**" in live and "**FAIL**" not in ready, (live, ready)


def test_a_round_on_a_saturated_machine_is_called_out(bench: ModuleType) -> None:
    assert "Machine saturated" not in bench.report(results(live_p99=4.0, load=1.9))
    report = bench.report(results(live_p99=4.0, load=2.4))
    assert "Machine saturated" in report and "csm /health/live round 1 (2.4)" in report
