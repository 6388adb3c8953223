"""/v1/authorities: create, list and read root certificate authorities."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, status

from csm.api.dependencies import Service
from csm.api.errors import responses
from csm.auth import requires
from csm.models import Authority, AuthorityCreate, AuthorityList
from csm.tokens import Principal

router = APIRouter(prefix="/v1/authorities", tags=["authorities"], responses=responses(401, 403, 503))


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(400, 413))
async def create_authority(
    body: AuthorityCreate, service: Service, principal: Annotated[Principal, requires("write")]
) -> Authority:
    """Creates a self-signed root CA; its key is kept encrypted under the master key."""
    return await service.create_authority(body, principal.name)


@router.get("")
async def list_authorities(service: Service, _: Annotated[Principal, requires("read")]) -> AuthorityList:
    return AuthorityList(items=await service.authorities())


@router.get("/{authority_id}", responses=responses(404))
async def get_authority(authority_id: UUID, service: Service, _: Annotated[Principal, requires("read")]) -> Authority:
    return await service.authority(authority_id)
