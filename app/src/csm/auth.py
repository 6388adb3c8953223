"""The FastAPI dependency that admits a bearer token holding a scope (see ``csm.tokens``)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, status
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from csm.tokens import Principal, Scope, TokenVerifier

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Requires(SecurityBase):
    """The principal of the request's bearer token, if it holds ``scope``; else 401 or 403.

    One dependency, where ``HTTPBearer`` under an authenticating and a scope-checking dependency were
    three: FastAPI solves each level of the tree on every request, and that was most of a GET's CPU
    in the framework. OpenAPI still shows the same bearer scheme on every route that uses it."""

    def __init__(self, scope: Scope) -> None:
        self.model = HTTPBearerModel(description="An API token from the tokens secret")
        self.scheme_name = "HTTPBearer"
        self.scope = scope

    async def __call__(self, request: HTTPConnection) -> Principal:
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers=_CHALLENGE)
        verifier: TokenVerifier = request.app.state.tokens
        principal = verifier.verify(token)
        if principal is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid bearer token", headers=_CHALLENGE)
        if self.scope not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"the token lacks the '{self.scope}' scope")
        return principal


def requires(scope: Scope) -> Any:
    """A dependency that admits a token holding ``scope`` and yields its principal."""
    return Depends(Requires(scope))
