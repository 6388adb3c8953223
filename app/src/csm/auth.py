"""FastAPI dependencies that admit a bearer token holding a scope (see ``csm.tokens``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from csm.tokens import Principal, Scope, TokenVerifier

_bearer = HTTPBearer(auto_error=False, description="An API token from the tokens secret")


async def _authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers=challenge)
    verifier: TokenVerifier = request.app.state.tokens
    principal = verifier.verify(credentials.credentials)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid bearer token", headers=challenge)
    return principal


def requires(scope: Scope) -> Any:
    """A dependency that admits a token holding ``scope`` and yields its principal."""

    async def check(principal: Annotated[Principal, Depends(_authenticate)]) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"the token lacks the '{scope}' scope")
        return principal

    return Depends(check)
