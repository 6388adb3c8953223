"""Error responses: every error is JSON ``{"detail": ...}``; nothing leaks a stack trace."""

from __future__ import annotations

import errno
import json
import logging

from fastapi import FastAPI, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from csm.ca import CertificateRequestError, SealError
from csm.models import Problem
from csm.pagination import BadPageToken
from csm.service import Conflict, NotFound
from csm.store import StoreUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


def problem(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(Problem(detail=detail).model_dump(), status_code, headers=headers)


async def _invalid_request(_: Request, error: Exception) -> Response:
    """FastAPI's 422 body without each error's ``input`` and ``ctx``: echoing the input back can
    leak what was sent and fails to render for inputs JSON cannot hold (lone surrogates, 1e400)."""
    if not isinstance(error, RequestValidationError):
        raise error
    detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
    body = json.dumps({"detail": detail}, ensure_ascii=True, allow_nan=False)
    return Response(body, status.HTTP_422_UNPROCESSABLE_CONTENT, media_type="application/json")


# What FastAPI raises (as a 400) for a body it cannot decode at all, e.g. bytes that are not UTF-8.
_UNPARSABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, error: Exception) -> Response:
    """A body that cannot be decoded is 422 ``json_invalid`` like any other JSON decode error, so
    every body-taking route answers bad JSON as its OpenAPI says; other HTTP errors are unchanged."""
    if not isinstance(error, HTTPException):
        raise error
    if error.status_code == status.HTTP_400_BAD_REQUEST and error.detail == _UNPARSABLE_BODY:
        detail = [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"}]
        body = json.dumps({"detail": detail})
        return Response(body, status.HTTP_422_UNPROCESSABLE_CONTENT, media_type="application/json")
    return await http_exception_handler(request, error)


async def _bad_request(_: Request, error: Exception) -> JSONResponse:
    return problem(status.HTTP_400_BAD_REQUEST, str(error))


async def _not_found(_: Request, error: Exception) -> JSONResponse:
    return problem(status.HTTP_404_NOT_FOUND, str(error))


async def _conflict(_: Request, error: Exception) -> JSONResponse:
    return problem(status.HTTP_409_CONFLICT, str(error))


async def _unavailable(_: Request, error: Exception) -> JSONResponse:
    log.warning("Cassandra unavailable", extra={"reason": str(error)})
    return problem(status.HTTP_503_SERVICE_UNAVAILABLE, str(error), {"Retry-After": RETRY_AFTER_SECONDS})


async def _sealed(_: Request, error: Exception) -> JSONResponse:
    log.error("cannot open a CA key", extra={"reason": str(error)})
    return problem(status.HTTP_500_INTERNAL_SERVER_ERROR, str(error))


async def _os_error(_: Request, error: Exception) -> JSONResponse:
    code, reason = getattr(error, "errno", None), getattr(error, "strerror", None) or type(error).__name__
    log.error("operating system error", extra={"reason": reason, "errno": code})
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        detail = f"the service cannot write temporary data: {reason}"
    else:
        detail = f"the service cannot complete the request: {reason}"
    return problem(status.HTTP_503_SERVICE_UNAVAILABLE, detail, {"Retry-After": RETRY_AFTER_SECONDS})


async def _unexpected(_: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=error)
    return problem(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error; see the service log for its request id")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(CertificateRequestError, _bad_request)
    app.add_exception_handler(BadPageToken, _bad_request)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(SealError, _sealed)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)


def responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error statuses a route may answer with."""
    return {code: {"model": Problem} for code in codes}
