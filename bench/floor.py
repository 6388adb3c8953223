"""The floor for the API benchmark: a bare ASGI app (no framework, no middleware, no models) that
serves GET /v1/certificates/{id} with the same prepared Cassandra read on the same driver, settings
and server as the service (uvicorn, uvloop, httptools), and GET /health/live as a constant: what the
server alone costs per probe. Run in the CSM image by `make bench`; never shipped.

    python floor.py   (CSM_PORT, CSM_CASSANDRA_CONTACT_POINTS, CSM_CASSANDRA_USERNAME,
                       CSM_CASSANDRA_KEYSPACE; the password in /run/secrets/csm_cassandra_password)
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import uvicorn
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import dict_factory

from cassandra import ConsistencyLevel

COLUMNS = (
    "id, authority_id, kind, serial_number, common_name, dns_names, ip_addresses, key_algorithm, not_before, "
    "not_after, certificate_pem, created_at, created_by, revoked_at, revoked_by, revocation_reason"
)
PREFIX = "/v1/certificates/"
LIVE, LIVE_BODY = "/health/live", b'{"status":"ok"}'

profile = ExecutionProfile(
    load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
    consistency_level=ConsistencyLevel.LOCAL_QUORUM,
    row_factory=dict_factory,
)
password = Path("/run/secrets/csm_cassandra_password").read_text().strip()
cluster = Cluster(
    os.environ["CSM_CASSANDRA_CONTACT_POINTS"].split(","),
    auth_provider=PlainTextAuthProvider(os.environ["CSM_CASSANDRA_USERNAME"], password),
    execution_profiles={EXEC_PROFILE_DEFAULT: profile},
)
session = cluster.connect(os.environ["CSM_CASSANDRA_KEYSPACE"])
select = session.prepare(f"SELECT {COLUMNS} FROM certificates WHERE id = ?")  # nosec B608 - constant columns


async def fetch(certificate_id: uuid.UUID) -> dict | None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    future = session.execute_async(select.bind((certificate_id,)))
    future.add_callbacks(
        lambda rows: loop.call_soon_threadsafe(done.set_result, rows),
        lambda error: loop.call_soon_threadsafe(done.set_exception, error),
    )
    rows = await done
    return rows[0] if rows else None


async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    status, body = 404, b'{"detail":"not found"}'
    if scope["path"] == LIVE:
        status, body = 200, LIVE_BODY
    elif scope["path"].startswith(PREFIX):
        try:
            row = await fetch(uuid.UUID(scope["path"][len(PREFIX) :]))
        except ValueError:
            row = None
        if row is not None:
            status, body = 200, json.dumps(row, default=str).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(os.environ["CSM_PORT"]), log_config=None, access_log=False, lifespan="off"
    )
