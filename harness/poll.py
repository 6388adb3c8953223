"""Waiting for a condition with a deadline, on tenacity: every wait names what it waited for and
the last answer it saw."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import tenacity

T = TypeVar("T")


def until(
    what: str,
    probe: Callable[[], T],
    timeout: float,
    interval: float = 1.0,
    give_up: Callable[[], bool] = lambda: False,
) -> T:
    """Calls ``probe`` until it returns a truthy value without raising, and returns that value.
    Raises TimeoutError after ``timeout`` seconds, or as soon as ``give_up()`` says waiting longer is
    pointless (its container died, say)."""
    started = time.monotonic()
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout) | (lambda _state: give_up()),
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_exception_type(Exception) | tenacity.retry_if_result(lambda value: not value),
        sleep=time.sleep,
    )
    try:
        return retrying(probe)
    except tenacity.RetryError as error:
        outcome = error.last_attempt
        last = repr(outcome.exception()) if outcome.failed else repr(outcome.result())
        raise TimeoutError(
            f"{what}: not within {timeout:g} s (gave up after {time.monotonic() - started:.1f} s; last: {last[:300]})"
        ) from None


def wait_for(
    url: str, status: int, timeout: float, interval: float = 0.1, give_up: Callable[[], bool] = lambda: False
) -> float:
    """Polls ``url`` until it answers ``status``; returns the seconds it took."""
    started = time.monotonic()

    def answers() -> bool:
        response = httpx.get(url, timeout=2)
        if response.status_code != status:
            raise AssertionError(f"{response.status_code} {response.text[:200]}")
        return True

    until(f"{url} answering {status}", answers, timeout, interval, give_up)
    return time.monotonic() - started


def within(what: str, probe: Callable[[], T], timeout: float, interval: float = 1.0) -> T | None:
    """``until`` for a wait whose outcome is itself measured: the first truthy value, or None when
    ``timeout`` passes first (the caller reports that as a failed check)."""
    try:
        return until(what, probe, timeout, interval)
    except TimeoutError:
        return None
