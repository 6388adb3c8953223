"""Issue 8's fault and load cases on the real local engine, each a test asserting its thresholds.

The cases live in reliability/cases/ (shared with `make reliability`); each runs with bounded
loops and time limits and returns its figures and checks. The ``ci`` profile keeps the whole
module within about ten minutes on 2 cores (the Cassandra outage is 30 s as the issue says).
The figures of the run go to build/reliability/report-ci.md.
"""

from __future__ import annotations

import pytest

from reliability.cases import CASES, Profile
from reliability.report import CaseResult
from reliability.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


def run_case(name: str, stack: Stack, profile: Profile, results: list[CaseResult]) -> CaseResult:
    try:
        result = CASES[name](stack, profile)
    except BaseException:
        stack.restore_csm()  # the next case starts from the product's definition again
        raise
    results.append(result)
    figures = "; ".join(f"{k} {v}" for k, v in result.figures.items())
    print(
        f"\n{result.title}: sent {result.sent}, failed {result.failed}, recovery {result.recovery_s} "
        f"({result.recovery_of}); {figures}"
    )
    assert result.passed, f"{result.title}:\n{result.failures()}\nfigures: {figures}"
    return result


@pytest.mark.timeout(300)
def test_full_tmpfs_is_survived(reliability_stack, reliability_profile, reliability_results):
    run_case("tmpfs-full", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(400)
def test_unpullable_digest_fails_before_touching_compose_service(
    reliability_stack, reliability_profile, reliability_results
):
    run_case("bad-digest-compose", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(600)
def test_sigterm_drains_in_flight_requests(reliability_stack, reliability_profile, reliability_results):
    run_case("sigterm", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(600)
def test_missing_secret_exits_2_with_backoff(reliability_stack, reliability_profile, reliability_results):
    run_case("secret-missing", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(600)
def test_unreadable_secret_exits_2_with_backoff(reliability_stack, reliability_profile, reliability_results):
    run_case("secret-unreadable", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(900)
def test_memory_limit_exceeded_restarts_and_recovers(reliability_stack, reliability_profile, reliability_results):
    run_case("memory", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(1200)
def test_cassandra_outage_of_30_s(reliability_stack, reliability_profile, reliability_results):
    run_case("cassandra-outage", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_5xx_and_no_schema_violation(reliability_stack, reliability_profile, reliability_results):
    run_case("schemathesis", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(900)
def test_sustained_load_has_no_errors(reliability_stack, reliability_profile, reliability_results):
    run_case("load", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(1500)
def test_swarm_replica_killed_keeps_999_availability(reliability_stack, reliability_profile, reliability_results):
    run_case("swarm-kill9", reliability_stack, reliability_profile, reliability_results)


@pytest.mark.timeout(1500)
def test_swarm_update_to_unpullable_digest_rolls_back(reliability_stack, reliability_profile, reliability_results):
    run_case("swarm-bad-digest", reliability_stack, reliability_profile, reliability_results)
