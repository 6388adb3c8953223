"""GET /health/live and /health/ready answered before the framework, as cheaply as an ASGI app can.

Probes arrive every few seconds from every orchestrator and load balancer, so they skip FastAPI's
routing, dependency solving and response validation: the body is a constant (live) or the latest
readiness verdict rendered once per background check (ready). They still count in the request
metrics and the access log like any other route. The routes in ``ops`` describe them in the
OpenAPI document, and the router still answers every other method (405) as before."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from csm.api.observe import record
from csm.health import Readiness
from csm.models import Liveness
from csm.models import Readiness as ReadinessBody

LIVE, READY = "/health/live", "/health/ready"
_HEADERS = [(b"content-type", b"application/json")]


def live_body() -> bytes:
    return Liveness(status="ok").model_dump_json().encode()


def ready_body(state: Readiness) -> tuple[int, bytes]:
    """The status and JSON body of /health/ready for a readiness verdict."""
    body = ReadinessBody(
        status="ready" if state.ready else "not_ready", reason=state.reason, checked_at=state.checked_at
    )
    return (200 if state.ready else 503), body.model_dump_json().encode()


class Probes:
    def __init__(self, app: ASGIApp, readiness: Callable[[], Readiness]) -> None:
        self.app = app
        self._readiness = readiness
        self._live = live_body()
        self._ready_for: Readiness | None = None
        self._ready: tuple[int, bytes] = (503, b"")

    def _answer(self, path: str) -> tuple[int, bytes]:
        if path == LIVE:
            return 200, self._live
        state = self._readiness()
        if state is not self._ready_for:  # a new verdict: rendered once, served until the next one
            self._ready_for, self._ready = state, ready_body(state)
        return self._ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in (LIVE, READY) or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, body = self._answer(path)
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        record("GET", path, status, path, started)
