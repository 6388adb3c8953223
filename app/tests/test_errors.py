"""Error mapping of the real application: a full disk or an unexpected failure still answers JSON."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable

import httpx
import pytest

from cassandra import InvalidRequest
from csm.app import create_app
from csm.config import load_settings
from harness.service import Secrets

Get = Callable[[str], httpx.Response]


@pytest.fixture
def get(secrets_dir: Secrets) -> Get:
    app = create_app(load_settings())

    @app.get("/test/disk-full")
    async def disk_full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    @app.get("/test/bug")
    async def bug() -> None:
        raise RuntimeError("a bug with a secret-looking detail")

    @app.get("/test/refused-write")
    async def refused_write() -> None:
        raise InvalidRequest('Error from server: code=2200 [Invalid query] message="Batch too large"')

    async def request(path: str) -> httpx.Response:
        # No lifespan runs: Cassandra is not needed here.
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://csm") as client:
            return await client.get(path)

    return lambda path: asyncio.run(request(path))


def test_full_temporary_storage_is_503_json(get: Get) -> None:
    response = get("/test/disk-full")
    assert response.status_code == 503
    assert response.json() == {"detail": "the service cannot write temporary data: No space left on device"}
    assert response.headers["retry-after"]


def test_unexpected_error_is_500_json_without_details(get: Get) -> None:
    response = get("/test/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; see the service log for its request id"}
    assert "secret-looking" not in response.text and "Traceback" not in response.text


def test_write_cassandra_refuses_is_500_json_without_details(get: Get) -> None:
    response = get("/test/refused-write")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; see the service log for its request id"}
    assert "Batch" not in response.text and "Traceback" not in response.text
