"""The application's lifespan, run in-process with Cassandra unreachable."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx
import pytest

from csm.app import create_app
from csm.config import load_settings
from harness.service import Secrets, free_port


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_start_up_objects_are_out_of_the_collectors_reach(
    secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch, unfrozen: None
) -> None:
    monkeypatch.setenv("CSM_CASSANDRA_PORT", str(free_port()))
    app = create_app(load_settings())
    assert gc.get_freeze_count() == 0

    async def serve() -> tuple[int, int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://csm") as client:
                return gc.get_freeze_count(), (await client.get("/health/live")).status_code

    frozen, status = asyncio.run(serve())
    assert frozen > 10_000, f"only {frozen} objects frozen at start-up"
    assert status == 200
