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


def test_the_services_started_line_gives_the_start_phases(bench: ModuleType) -> None:
    log = (
        '{"level": "INFO", "message": "readiness changed", "ready": true}\n'
        '{"level": "INFO", "logger": "csm.startup", "message": "started", "interpreter_s": 0.09, '
        '"settings_s": 0.16, "connect_s": 0.19, "total_s": 0.84, "request_id": null}\n'
    )
    assert bench.started_phases(log) == {"interpreter_s": 0.09, "settings_s": 0.16, "connect_s": 0.19, "total_s": 0.84}
    assert bench.started_phases('{"message": "connected to Cassandra"}\n') == {}


def api_run(rate: int, p99: float, statuses: dict[str, int], errors: dict[str, int] | None = None) -> dict:
    return {
        **round_stat(p99, 0.5),
        "rate": rate,
        "statuses": statuses,
        "errors": errors or {},
        "requests": sum(statuses.values()) + sum((errors or {}).values()),
        "service_cpu_ms": 1.0,
        "cassandra_cpu_ms": 0.5,
    }


def test_a_rate_holds_only_with_every_request_answered_as_expected_within_the_p99() -> None:
    from bench import api

    assert api.holds(api_run(200, 19.0, {"200": 100}), 20.0, "200")
    assert not api.holds(api_run(200, 21.0, {"200": 100}), 20.0, "200"), "p99 over the target"
    assert not api.holds(api_run(200, 5.0, {"200": 99, "503": 1}), 20.0, "200"), "one 503"
    assert not api.holds(api_run(200, 5.0, {"200": 99}, {"timeout": 1}), 20.0, "200"), "one error"
    assert not api.holds(api_run(200, 5.0, {"200": 100}), 20.0, "201"), "the wrong status"


def test_the_api_report_states_each_target_and_the_ratio_to_the_floor() -> None:
    from bench import api

    runs = {"runs": [{**api_run(200, 5.0, {"200": 100}), "holds": True}], "max_rps": 200}
    doubled = {"runs": [{**api_run(400, 5.0, {"200": 100}), "holds": True}], "max_rps": 400}
    lines = api.report(
        {
            "seconds": 15.0,
            # as read back from results.json: the worker counts are strings
            "workers": {
                "1": {"get": runs, "issue": {"runs": [], "max_rps": None}},
                "2": {"get": doubled, "issue": {"runs": [], "max_rps": None}},
            },
            "floor": runs,
            "service_at_cpu_rate": {"service_cpu_ms": 1.8, "cassandra_cpu_ms": 0.4},
            "floor_at_cpu_rate": {"service_cpu_ms": 0.9, "cassandra_cpu_ms": 0.4},
            "get_cpu_ratio": 2.0,
            "probe": {side: {"200": live_run(0.5), "1000": live_run(0.2)} for side in ("service", "floor")},
        }
    )
    text = "\n".join(lines)
    assert "| 200 req/s | 400 req/s | 200 req/s | 2.00 | ≥ 1000 req/s | **FAIL** |" in text
    assert "| none | none | | n/a | ≥ 200 req/s | **FAIL** |" in text
    assert "| 1.8 ms | | 0.9 ms | 2.0 | ≤ 1.5 times the floor | **FAIL** |" in text
    assert "- get, CSM, 2 workers at 400 req/s: holds" in text


def live_run(cpu_ms: float, statuses: dict[str, int] | None = None) -> dict:
    return {**api_run(200, 2.0, statuses or {"200": 100}), "service_cpu_ms": cpu_ms}


def test_the_probe_rows_compare_the_service_with_the_bare_server_at_each_rate() -> None:
    from bench import api

    lines = api.probe_report(
        {
            "service": {"200": live_run(0.5), "1000": live_run(0.25)},
            "floor": {"200": live_run(0.4), "1000": live_run(0.2)},
        }
    )
    assert "| 200 req/s | 0.5 ms | 0.4 ms | 1.25 | ≤ 0.3 ms | **FAIL** |" in lines
    assert "| 1000 req/s | 0.25 ms | 0.2 ms | 1.25 | ≤ 0.3 ms | pass |" in lines


def test_a_probe_rate_with_a_failed_request_fails_however_cheap() -> None:
    from bench import api

    lines = api.probe_report(
        {
            "service": {"200": live_run(0.1, {"200": 99, "503": 1}), "1000": live_run(0.1)},
            "floor": {"200": live_run(0.1), "1000": live_run(0.1)},
        }
    )
    assert "| 200 req/s | 0.1 ms | 0.1 ms | 1.00 | ≤ 0.3 ms | **FAIL** (errors) |" in lines


def test_the_programs_share_is_read_from_the_engine_harness_output() -> None:
    from bench import engine

    stdout = "Previewing update (local)\nprogram: ran in 2.25 s (2.10 s CPU)\n@ previewing....\npreview: {}\n"
    assert engine.program_share(stdout, 6.5) == {"program_s": 2.25, "program_cpu_s": 2.1, "engine_s": 4.25}
    with pytest.raises(SystemExit):
        engine.program_share("preview: {}\n", 6.5)


def test_a_rolling_update_with_one_failed_request_fails_in_the_engine_report() -> None:
    from bench import engine

    op = {"wall_s": 40.0, "program_s": 2.0, "program_cpu_s": 1.9, "engine_s": 38.0}
    load = {**round_stat(50.0, 1.0), "statuses": {"200": 5999, "502": 1}}
    pushed = {"compressed_mb": 21.4, "layer_media_types": ["application/vnd.oci.image.layer.v1.tar+zstd"]}
    figures = {"up": op, "preview": {**op, "wall_s": 6.0}, "preview_runs": [{**op, "wall_s": 6.0}], "pushed": pushed}
    failed = "\n".join(engine.report({**figures, "rolling": {**op, "load": load, "failed": 1}}))
    held = "\n".join(engine.report({**figures, "rolling": {**op, "load": round_stat(50.0, 1.0), "failed": 0}}))
    rolling_row = next(line for line in failed.splitlines() if line.startswith("| rolling update"))
    assert rolling_row.endswith("| **FAIL** |"), rolling_row
    assert next(line for line in held.splitlines() if line.startswith("| rolling update")).endswith("| pass |")
    assert "| ≤ 15 s | pass |" in held, "a 6 s no-op preview meets the 15 s target"


def test_the_in_process_get_answers_200_and_splits_its_cost_into_layers() -> None:
    from bench import framework

    data = framework.measure(count=40, rounds=2)
    assert data["median_us"] > 0 and len(data["rounds_us"]) == 2
    assert set(data["shares_pct"]) == set(framework.LAYERS)
    assert all(0 < share < 100 for share in data["shares_pct"].values()), data["shares_pct"]
    assert sum(data["shares_pct"].values()) < 100, "the layers overlap: their shares add up past the whole"
    assert any(line.startswith("| dependency solving") for line in framework.report(data))
