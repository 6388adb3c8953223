"""Request body limit with JSON 413 answers.

FastAPI's own ``max_body_size`` answers a too-large Content-Length in plain text (replacing any
response sent later), so the service limits bodies here instead: a declared length over the limit
is refused before the body is read, and a body that grows past it (chunked) while being read
raises an HTTPException that the exception handlers turn into JSON."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from csm.api.errors import problem


class LimitBodySize:
    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_size} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "0")
        if not length.isdigit():
            await problem(400, "Content-Length is not a number")(scope, receive, send)
            return
        if int(length) > self.max_body_size:
            await problem(413, self._too_large())(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, receive_within_limit, send)
