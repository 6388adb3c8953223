"""Fixtures of the reliability cases under pytest: the ``csmrel`` stack once per session (kept
when it was already running), the profile (``ci`` unless RELIABILITY_PROFILE says otherwise), and
the collected results, written to build/reliability/report-ci.md at the end of the session.
Under CI=true a missing engine or image FAILS, it never skips."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability import report
from reliability.cases import BUILD, PROFILES, Profile, swarm_cleanup
from reliability.report import CaseResult
from reliability.stack import Stack, Unavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def reliability_stack() -> Iterator[Stack]:
    try:
        stack = Stack.from_harness()
    except Unavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the reliability cases need the engine and the images under CI=true: {error}")
        pytest.skip(str(error))
    was_running = stack.running()
    stack.up()
    yield stack
    swarm_cleanup()  # the Swarm stack too, when a case had to deploy it
    if not was_running:
        stack.down()


@pytest.fixture(scope="session")
def reliability_profile() -> Profile:
    name = os.environ.get("RELIABILITY_PROFILE", "ci")
    if name not in PROFILES:
        pytest.fail(f"RELIABILITY_PROFILE={name!r} is not one of {sorted(PROFILES)}")
    return PROFILES[name]


@pytest.fixture(scope="session")
def reliability_results(reliability_profile: Profile) -> Iterator[list[CaseResult]]:
    results: list[CaseResult] = []
    started = time.time()
    yield results
    if results:
        report.write(results, BUILD / "report-ci.md", reliability_profile.name, started)
