"""/v1/certificates: issue, list, read and revoke node and client certificates."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from csm.api.dependencies import Service
from csm.api.errors import responses
from csm.auth import requires
from csm.models import Certificate, CertificateIssue, CertificatePage, IssuedCertificate, RevokeRequest
from csm.tokens import Principal

router = APIRouter(prefix="/v1/certificates", tags=["certificates"], responses=responses(401, 403, 503))

PAGE_TOKEN_MAX = 4096
PAGE_TOKEN_PATTERN = r"^[A-Za-z0-9_-]+$"  # nosec B105 - a pattern, not a secret


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(400, 404, 413))
async def issue_certificate(
    body: CertificateIssue, service: Service, principal: Annotated[Principal, requires("write")]
) -> IssuedCertificate:
    """Issues a certificate for the key in ``csr_pem``, or for a key the service makes and returns
    once in ``private_key_pem`` (never stored)."""
    return await service.issue(body, principal.name)


@router.get("", responses=responses(400))
async def list_certificates(
    service: Service,
    _: Annotated[Principal, requires("read")],
    authority_id: UUID | None = None,
    expiring_within_days: Annotated[
        int | None, Query(ge=0, le=36500, description="only valid certificates expiring within this many days")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    page_token: Annotated[str | None, Query(max_length=PAGE_TOKEN_MAX, pattern=PAGE_TOKEN_PATTERN)] = None,
) -> CertificatePage:
    items, next_token = await service.certificates(authority_id, expiring_within_days, limit, page_token)
    return CertificatePage(items=items, next_page_token=next_token)


@router.get("/{certificate_id}", responses=responses(404))
async def get_certificate(
    certificate_id: UUID, service: Service, _: Annotated[Principal, requires("read")]
) -> Certificate:
    return await service.certificate(certificate_id)


@router.post("/{certificate_id}/revoke", responses=responses(400, 404, 409, 413))
async def revoke_certificate(
    certificate_id: UUID,
    body: RevokeRequest,
    service: Service,
    principal: Annotated[Principal, requires("write")],
) -> Certificate:
    return await service.revoke(certificate_id, body.reason, principal.name)
