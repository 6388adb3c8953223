"""Operational endpoints, open without a token: health, liveness, readiness, metrics, info."""

from __future__ import annotations

import platform
import time

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from csm.api.probes import live_body, ready_body
from csm.build import NAME, BuildInfo
from csm.config import Settings
from csm.health import ReadinessMonitor
from csm.metrics import CONTENT_TYPE_LATEST, exposition
from csm.models import Check, Health, Info, Liveness, Readiness

router = APIRouter(tags=["operations"])


def _monitor(request: Request) -> ReadinessMonitor:
    monitor: ReadinessMonitor = request.app.state.readiness
    return monitor


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request) -> JSONResponse:
    """Each check with its status and latency; 503 when one fails."""
    state = _monitor(request).state
    checks = {
        "process": Check(status="ok", latency_ms=0.0),
        "cassandra": Check(status="ok" if state.ready else "failing", latency_ms=state.latency_ms, detail=state.reason),
    }
    ok = all(check.status == "ok" for check in checks.values())
    body = Health(status="ok" if ok else "failing", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE)


@router.get("/health/live", response_model=Liveness)
async def live() -> Response:
    """The process answers; never touches Cassandra. (GET is answered by ``probes.Probes``.)"""
    return Response(live_body(), media_type="application/json")


@router.get("/health/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(request: Request) -> Response:
    """Cassandra is usable, as of the last background check; 503 with the reason when not.
    (GET is answered by ``probes.Probes``.)"""
    code, body = ready_body(_monitor(request).state)
    return Response(body, code, media_type="application/json")


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics() -> Response:
    """Prometheus text exposition."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/info")
async def info(request: Request) -> Info:
    """What is running and its effective configuration, every secret redacted."""
    build: BuildInfo = request.app.state.build
    settings: Settings = request.app.state.settings
    return Info(
        name=NAME,
        version=build.version,
        git_commit=build.git_commit,
        build_date=build.build_date,
        python_version=platform.python_version(),
        architecture=platform.machine(),
        uptime_seconds=round(time.monotonic() - request.app.state.started, 3),
        config=settings.redacted(),
    )
