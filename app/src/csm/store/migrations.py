"""Versioned, idempotent schema migrations. Append new versions; never edit an applied one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from cassandra.cluster import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "authorities, certificates with SAI indexes, audit log",
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
            "CREATE INDEX IF NOT EXISTS certificates_by_authority ON certificates (authority_id) USING 'sai'",
            "CREATE INDEX IF NOT EXISTS certificates_by_not_after ON certificates (not_after) USING 'sai'",
            """CREATE TABLE IF NOT EXISTS audit_log (
                day date, at timeuuid, actor text, action text, target_type text, target_id text,
                details map<text, text>, PRIMARY KEY ((day), at)) WITH CLUSTERING ORDER BY (at DESC)""",
        ),
    ),
)


def replication(strategy: str, factor: int) -> str:
    return f"{{'class': '{strategy}', 'replication_factor': {factor}}}"


def migrate(session: Session, keyspace: str, strategy: str, factor: int) -> list[int]:
    """Creates the keyspace if needed, makes it the session's keyspace and applies every migration
    not yet recorded; returns the versions applied."""
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication(strategy, factor)}")
    session.set_keyspace(keyspace)
    session.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, description text, applied_at timestamp)"
    )
    done = {row["version"] for row in session.execute("SELECT version FROM schema_migrations")}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        log.info("applying migration", extra={"version": migration.version, "description": migration.description})
        for statement in migration.statements:
            session.execute(statement)
        session.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s)",
            (migration.version, migration.description, datetime.now(UTC)),
        )
        applied.append(migration.version)
    return applied
