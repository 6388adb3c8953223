"""Request-scoped access to what the lifespan built (kept on ``app.state``).

Dependencies here and in ``csm.auth`` are coroutines: FastAPI runs a plain function in a worker
thread, a hop that cost more CPU than the rest of a request."""

from typing import Annotated

from fastapi import Depends, Request

from csm.service import CertificateAuthorityService


async def _service(request: Request) -> CertificateAuthorityService:
    service: CertificateAuthorityService = request.app.state.service
    return service


Service = Annotated[CertificateAuthorityService, Depends(_service)]
