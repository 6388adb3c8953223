"""Amazon Keyspaces specifics. Keyspaces creates keyspaces and tables asynchronously: a CREATE returns
at once and the table is usable only once ``system_schema_mcs.tables`` reports it ACTIVE
(https://docs.aws.amazon.com/keyspaces/latest/devguide/working-with-tables.html#tables-create)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from cassandra.cluster import Session

from cassandra import InvalidRequest

log = logging.getLogger(__name__)

_CREATE = re.compile(r"^\s*CREATE\s+(KEYSPACE|TABLE)\s+IF\s+NOT\s+EXISTS\s+([a-z][a-z0-9_]*)", re.IGNORECASE)
POLL_SECONDS = 1.0


def created(statement: str) -> tuple[str, str] | None:
    """("keyspace" | "table", name) for a CREATE ... IF NOT EXISTS statement, else None."""
    match = _CREATE.match(statement)
    return (match.group(1).lower(), match.group(2)) if match else None


def wait_until_active(
    session: Session,
    keyspace: str,
    statement: str,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """After ``statement``: waits until the keyspace it created exists, or the table it created is ACTIVE."""
    what = created(statement)
    if what is None:
        return
    kind, name = what
    query: str
    params: tuple[str, ...]
    ready: Callable[[Any], bool]
    if kind == "keyspace":
        query, params, ready = (
            "SELECT keyspace_name FROM system_schema_mcs.keyspaces WHERE keyspace_name = %s",
            (name,),
            lambda row: True,
        )
    else:
        query, params, ready = (
            "SELECT status FROM system_schema_mcs.tables WHERE keyspace_name = %s AND table_name = %s",
            (keyspace, name),
            lambda row: str(row["status"]).upper() == "ACTIVE",
        )
    deadline = clock() + timeout
    while True:
        try:
            row = session.execute(query, params).one()
        except InvalidRequest as error:
            if "system_schema_mcs" not in str(error):
                raise
            # Not Keyspaces (a Cassandra emulating it in tests): its DDL is done when it returns.
            log.info("no system_schema_mcs here: DDL is synchronous", extra={"kind": kind, "schema_object": name})
            return
        if row is not None and ready(row):
            return
        if clock() >= deadline:
            state = row["status"] if row is not None and "status" in row else "absent"
            raise TimeoutError(f"Keyspaces {kind} {name} not ACTIVE after {timeout:g} s (status: {state})")
        log.info("waiting for Keyspaces to create it", extra={"kind": kind, "schema_object": name})
        sleep(POLL_SECONDS)
