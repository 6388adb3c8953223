"""Versioned, idempotent schema migrations. Append new versions; never edit an applied one.

(Migration 1 once also created two SAI indexes. It no longer does: SAI does not exist on Cassandra 4.1
and Amazon Keyspaces has no CREATE INDEX at all. Databases that applied the old migration 1 keep the
indexes, which nothing reads any more, until a later, explicit migration drops them.)

Replicas may start together: the migrations run under a lease taken with a lightweight transaction,
so one replica at a time issues DDL (concurrent CREATE TABLE on different coordinators can leave a
Cassandra cluster with two ids for one table). Every write of a migration is idempotent and the
backfill records its progress, so a migration interrupted anywhere is simply run again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from cassandra.cluster import Session
from cassandra.query import SimpleStatement

log = logging.getLogger(__name__)

# The expiry query table is partitioned by the month a certificate expires in (the first day of it).
EXPIRY_BUCKETS_SCOPE = "all"
BACKFILL_CHUNK = 200
LEASE_SECONDS = 30.0
LEASE_WAIT_SECONDS = 600.0
_MIN_TOKEN = -(2**63)


def expiry_bucket(not_after: datetime) -> date:
    return date(not_after.year, not_after.month, 1)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    # Runs after the statements, under the lease; must be idempotent and resumable.
    backfill: Callable[[Session, Lease], int] | None = None


def _backfill_query_tables(session: Session, lease: Lease, chunk: int | None = None) -> int:
    """Writes the query-table rows of every certificate, in token order, recording the last token done
    in ``migration_progress`` after each chunk: a crash resumes from there; a chunk done twice writes
    the same rows again. Returns how many certificates this run wrote."""
    chunk = chunk or BACKFILL_CHUNK
    row = session.execute("SELECT position, done FROM migration_progress WHERE version = 2").one()
    if row is not None and row["done"]:
        return 0
    position = row["position"] if row is not None else _MIN_TOKEN
    select = session.prepare(
        "SELECT token(id) AS position, id, authority_id, not_after FROM certificates WHERE token(id) > ? LIMIT ?"
    )
    by_authority = session.prepare(
        "INSERT INTO certificates_by_authority (authority_id, not_after, id) VALUES (?, ?, ?)"
    )
    by_expiry = session.prepare(
        "INSERT INTO certificates_by_expiry (bucket, not_after, id, authority_id) VALUES (?, ?, ?, ?)"
    )
    bucket = session.prepare("INSERT INTO certificate_expiry_buckets (scope, bucket) VALUES (?, ?)")
    progress = session.prepare(
        "INSERT INTO migration_progress (version, position, done, updated_at) VALUES (2, ?, ?, ?)"
    )
    written = 0
    while True:
        rows = list(session.execute(select, (position, chunk)))
        futures = []
        for r in rows:
            if r["not_after"] is None or r["authority_id"] is None:
                continue  # not a certificate this service wrote: nothing to index
            month = expiry_bucket(r["not_after"])
            futures += [
                session.execute_async(by_authority, (r["authority_id"], r["not_after"], r["id"])),
                session.execute_async(by_expiry, (month, r["not_after"], r["id"], r["authority_id"])),
                session.execute_async(bucket, (EXPIRY_BUCKETS_SCOPE, month)),
            ]
            written += 1
        for future in futures:
            future.result()
        if not rows:
            session.execute(progress, (position, True, datetime.now(UTC)))
            return written
        position = rows[-1]["position"]
        session.execute(progress, (position, False, datetime.now(UTC)))
        lease.renew()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "authorities, certificates, audit log",
        (
            """CREATE TABLE IF NOT EXISTS authorities (
                id uuid PRIMARY KEY, name text, key_algorithm text, serial_number text,
                not_before timestamp, not_after timestamp, certificate_pem text, sealed_key blob,
                created_at timestamp, created_by text)""",
            """CREATE TABLE IF NOT EXISTS certificates (
                id uuid PRIMARY KEY, authority_id uuid, kind text, serial_number text, common_name text,
                dns_names list<text>, ip_addresses list<text>, key_algorithm text,
                not_before timestamp, not_after timestamp, certificate_pem text,
                created_at timestamp, created_by text,
                revoked_at timestamp, revoked_by text, revocation_reason text)""",
            """CREATE TABLE IF NOT EXISTS audit_log (
                day date, at timeuuid, actor text, action text, target_type text, target_id text,
                details map<text, text>, PRIMARY KEY ((day), at)) WITH CLUSTERING ORDER BY (at DESC)""",
        ),
    ),
    Migration(
        2,
        "query tables: certificates by authority and by expiry month, backfilled from certificates",
        (
            """CREATE TABLE IF NOT EXISTS certificates_by_authority (
                authority_id uuid, not_after timestamp, id uuid, PRIMARY KEY ((authority_id), not_after, id))""",
            """CREATE TABLE IF NOT EXISTS certificates_by_expiry (
                bucket date, not_after timestamp, id uuid, authority_id uuid,
                PRIMARY KEY ((bucket), not_after, id))""",
            """CREATE TABLE IF NOT EXISTS certificate_expiry_buckets (
                scope text, bucket date, PRIMARY KEY ((scope), bucket))""",
            """CREATE TABLE IF NOT EXISTS migration_progress (
                version int PRIMARY KEY, position bigint, done boolean, updated_at timestamp)""",
        ),
        _backfill_query_tables,
    ),
)

# Tables the service reads and writes; in Keyspaces mode each must be ACTIVE before use.
TABLES = (
    "schema_migrations",
    "schema_lease",
    "authorities",
    "certificates",
    "audit_log",
    "certificates_by_authority",
    "certificates_by_expiry",
    "certificate_expiry_buckets",
    "migration_progress",
)


def replication(strategy: str, factor: int) -> str:
    if strategy == "SingleRegionStrategy":
        return "{'class': 'SingleRegionStrategy'}"
    return f"{{'class': '{strategy}', 'replication_factor': {factor}}}"


class LeaseLost(Exception):
    """Another replica took the migration lease over (this one stalled past its expiry)."""


class Lease:
    """A lease on running the migrations, held in ``schema_lease`` through lightweight transactions.
    An expired lease (its holder died) is taken over by compare-and-set on the values read."""

    NAME = "migrations"

    def __init__(self, session: Session, seconds: float = LEASE_SECONDS, clock: Callable[[], float] = time.time):
        self._session = session
        self._seconds = seconds
        self._clock = clock
        self.owner = uuid.uuid4()

    def _expiry(self) -> datetime:
        return datetime.fromtimestamp(self._clock() + self._seconds, UTC)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _run(self, cql: str, params: tuple[Any, ...]) -> dict[str, Any]:
        row: dict[str, Any] = self._session.execute(SimpleStatement(cql), params).one()
        return row

    def try_acquire(self) -> bool:
        taken = self._run(
            "INSERT INTO schema_lease (name, owner, expires_at) VALUES (%s, %s, %s) IF NOT EXISTS",
            (self.NAME, self.owner, self._expiry()),
        )
        if taken["[applied]"]:
            return True
        holder, expires = taken.get("owner"), taken.get("expires_at")
        if holder == self.owner:
            return True
        if holder is not None and expires is not None and expires.replace(tzinfo=UTC) > self._now():
            return False
        stolen = self._run(
            "UPDATE schema_lease SET owner = %s, expires_at = %s WHERE name = %s IF owner = %s AND expires_at = %s",
            (self.owner, self._expiry(), self.NAME, holder, expires),
        )
        return bool(stolen["[applied]"])

    def renew(self) -> None:
        renewed = self._run(
            "UPDATE schema_lease SET expires_at = %s WHERE name = %s IF owner = %s",
            (self._expiry(), self.NAME, self.owner),
        )
        if not renewed["[applied]"]:
            raise LeaseLost("the migration lease was taken over by another replica")

    def release(self) -> None:
        self._run("DELETE FROM schema_lease WHERE name = %s IF owner = %s", (self.NAME, self.owner))


def _done(session: Session) -> set[int]:
    return {row["version"] for row in session.execute("SELECT version FROM schema_migrations")}


def migrate(
    session: Session,
    keyspace: str,
    strategy: str,
    factor: int,
    *,
    on_ddl: Callable[[Session, str], None] | None = None,
    lease_wait: float = LEASE_WAIT_SECONDS,
) -> list[int]:
    """Creates the keyspace if needed, makes it the session's keyspace and applies every migration
    not yet recorded; returns the versions applied. ``on_ddl`` runs after each schema statement (Amazon
    Keyspaces creates tables asynchronously: it waits for them to turn ACTIVE)."""

    def ddl(statement: str) -> None:
        session.execute(statement)
        if on_ddl is not None:
            on_ddl(session, statement)

    ddl(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication(strategy, factor)}")
    session.set_keyspace(keyspace)
    ddl(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, description text, applied_at timestamp)"
    )
    if _done(session) >= {m.version for m in MIGRATIONS}:
        return []  # the common start: nothing to do, no lease needed
    ddl("CREATE TABLE IF NOT EXISTS schema_lease (name text PRIMARY KEY, owner uuid, expires_at timestamp)")
    lease = Lease(session)
    deadline = time.monotonic() + lease_wait
    while not lease.try_acquire():
        if time.monotonic() > deadline:
            raise TimeoutError(f"another replica held the migration lease for more than {lease_wait:g} s")
        log.info("another replica is migrating; waiting for its lease")
        time.sleep(1.0)
    try:
        done = _done(session)
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            log.info("applying migration", extra={"version": migration.version, "description": migration.description})
            for statement in migration.statements:
                ddl(statement)
                lease.renew()
            if migration.backfill is not None:
                written = migration.backfill(session, lease)
                log.info("backfilled", extra={"version": migration.version, "rows": written})
            lease.renew()
            session.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.description, datetime.now(UTC)),
            )
            applied.append(migration.version)
        return applied
    finally:
        try:
            lease.release()
        except Exception as error:  # the lease expires by itself
            log.warning("could not release the migration lease", extra={"reason": str(error)})
