"""Readiness, refreshed in the background so that probes are cheap and never stampede Cassandra."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from csm.metrics import READY
from csm.store import Database, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str | None
    checked_at: datetime | None
    latency_ms: float | None


class ReadinessMonitor:
    """Pings Cassandra every ``interval`` seconds and keeps the latest verdict."""

    def __init__(self, database: Database, interval: float, timeout: float) -> None:
        self._database = database
        self._interval = interval
        self._timeout = timeout
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
            await self.check()
            await asyncio.sleep(self._interval)
