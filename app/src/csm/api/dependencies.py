"""Request-scoped access to what the lifespan built (kept on ``app.state``)."""

from typing import Annotated

from fastapi import Depends, Request

from csm.service import CertificateAuthorityService


def _service(request: Request) -> CertificateAuthorityService:
    service: CertificateAuthorityService = request.app.state.service
    return service


Service = Annotated[CertificateAuthorityService, Depends(_service)]
