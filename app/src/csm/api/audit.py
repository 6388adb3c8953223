"""/v1/audit: the append-only log of every change, one UTC day at a time, newest first."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from csm.api.certificates import PAGE_TOKEN_MAX, PAGE_TOKEN_PATTERN
from csm.api.dependencies import Service
from csm.api.errors import responses
from csm.auth import requires
from csm.models import AuditPage
from csm.service import utc_now
from csm.tokens import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=responses(401, 403, 503))


@router.get("", responses=responses(400))
async def list_audit_events(
    service: Service,
    _: Annotated[Principal, requires("read")],
    day: Annotated[date | None, Query(description="UTC day; today if not given")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    page_token: Annotated[str | None, Query(max_length=PAGE_TOKEN_MAX, pattern=PAGE_TOKEN_PATTERN)] = None,
) -> AuditPage:
    items, next_token = await service.audit(day or utc_now().date(), limit, page_token)
    return AuditPage(items=items, next_page_token=next_token)
