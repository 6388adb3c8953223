"""Readiness, refreshed in the background so that probes are cheap and never stampede Cassandra; a
session that stays unusable is replaced, so that a Cassandra back at a new address is found again."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from csm.metrics import READY
from csm.store import Database, StoreUnavailable

log = logging.getLogger(__name__)

# A session unusable for this many readiness intervals is replaced by a new one; while it stays
# unusable, the wait before the next attempt doubles up to RECONNECT_BACKOFF_MAX seconds.
RECONNECT_AFTER_CHECKS = 5
RECONNECT_BACKOFF_MAX = 60.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str | None
    checked_at: datetime | None
    latency_ms: float | None


class ReconnectSchedule:
    """When to replace an unusable session: ``first`` seconds after it became unusable, then after waits
    that double up to ``longest`` while it stays so. A usable check starts over."""

    def __init__(self, first: float, longest: float) -> None:
        self._first = first
        self._longest = max(longest, first)
        self._wait = first
        self._due: float | None = None

    def due(self, usable: bool, now: float) -> bool:
        if usable:
            self._wait, self._due = self._first, None
            return False
        if self._due is None:
            self._due = now + self._wait
        if now < self._due:
            return False
        self._wait = min(self._wait * 2, self._longest)
        self._due = now + self._wait
        return True


class ReadinessMonitor:
    """Pings Cassandra every ``interval`` seconds, keeps the latest verdict, and has the database
    reconnect when a session it connected stays unusable (see ``ReconnectSchedule``)."""

    def __init__(self, database: Database, interval: float, timeout: float) -> None:
        self._database = database
        self._interval = interval
        self._timeout = timeout
        self._reconnects = ReconnectSchedule(RECONNECT_AFTER_CHECKS * interval, RECONNECT_BACKOFF_MAX)
        self.state = Readiness(False, "starting", None, None)
        READY.set(0)

    async def check(self) -> Readiness:
        started = time.perf_counter()
        reason: str | None = None
        if not self._database.connected:
            reason = f"Cassandra is not connected: {self._database.last_error}"
        else:
            try:
                await asyncio.wait_for(self._database.ping(), self._timeout)
            except StoreUnavailable as error:
                reason = str(error)
            except TimeoutError:
                reason = f"Cassandra did not answer within {self._timeout:g} s"
        latency = (time.perf_counter() - started) * 1000
        state = Readiness(reason is None, reason, datetime.now(UTC), round(latency, 3))
        if state.ready != self.state.ready:
            log.info("readiness changed", extra={"ready": state.ready, "reason": reason})
        self.state = state
        READY.set(1 if state.ready else 0)
        return state

    async def run(self) -> None:
        while True:
            state = await self.check()
            # Until the first connection, connect_forever is building sessions already.
            due = self._database.connected and self._reconnects.due(state.ready, time.monotonic())
            if due and await self._database.reconnect():
                continue  # check the new session at once
            await asyncio.sleep(self._interval)
