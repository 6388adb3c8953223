"""Per-request metrics and one JSON access-log line per request."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from csm.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS, HTTP_REQUESTS_IN_PROGRESS

log = logging.getLogger("csm.access")

UNMATCHED_ROUTE = "unmatched"
# Probes and scrapes arrive every few seconds; their lines are debug-level.
_QUIET_ROUTES = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})


class ObserveRequests:
    """Counts and times each request by method, route template (never the raw path) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with HTTP_REQUESTS_IN_PROGRESS.track_inprogress():
                await self.app(scope, receive, record_status)
        finally:
            route: BaseRoute | None = scope.get("route")
            record(scope["method"], getattr(route, "path", UNMATCHED_ROUTE), status, scope["path"], started)


@functools.lru_cache(maxsize=1024)
def _observers(method: str, template: str, status: str) -> tuple[Callable[[], None], Callable[[float], None]]:
    labels = {"method": method, "route": template, "status": status}
    return HTTP_REQUESTS.labels(**labels).inc, HTTP_REQUEST_SECONDS.labels(**labels).observe


def record(method: str, template: str, status: int, path: str, started: float) -> None:
    """Counts and times one request (``started``: its perf_counter) and writes its access-log line."""
    seconds = time.perf_counter() - started
    count, observe = _observers(method, template, str(status))
    count()
    observe(seconds)
    level = logging.DEBUG if template in _QUIET_ROUTES else logging.INFO
    if log.isEnabledFor(level):
        labels = {"method": method, "route": template, "status": str(status)}
        log.log(level, "request", extra={**labels, "path": path, "duration_ms": round(seconds * 1000, 3)})
