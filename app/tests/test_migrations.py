"""Schema migrations against the real Cassandra: a database of the SAI era moves to the query tables
(backfill, resumed after a crash), replicas migrating at once, no index on a fresh database, the
migration lease, protocol negotiation, and a reconnect that does not migrate again."""

from __future__ import annotations

import asyncio
import secrets
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cassandra.cluster import Session
from cassandra.query import dict_factory

from csm.config import load_settings
from csm.pagination import PageTokens
from csm.store import Database, Repository
from csm.store import migrations as m
from harness.service import CASSANDRA_VERSION, Secrets, admin_cluster, service_env

pytestmark = pytest.mark.cassandra

# Migration 1 as it was before the query tables: what deployments of the SAI era hold.
SAI_ERA_INDEXES = (
    "CREATE INDEX IF NOT EXISTS certificates_by_authority ON certificates (authority_id) USING 'sai'",
    "CREATE INDEX IF NOT EXISTS certificates_by_not_after ON certificates (not_after) USING 'sai'",
)
SAI = not CASSANDRA_VERSION.startswith("4.")  # Cassandra 4.1 has no SAI: its old databases could not exist


@pytest.fixture
def admin(cassandra: None) -> Iterator[Session]:
    cluster = admin_cluster()
    session = cluster.connect()
    yield session
    cluster.shutdown()


@pytest.fixture
def fresh_keyspace(admin: Session) -> Iterator[str]:
    name = f"csm_mig_{secrets.token_hex(4)}"
    yield name
    admin.execute(f"DROP KEYSPACE IF EXISTS {name}")


@pytest.fixture
def env(fresh_keyspace: str, secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in service_env(secrets_dir, fresh_keyspace).items():
        monkeypatch.setenv(name, value)


def sai_era_database(session: Session, keyspace: str, count: int, authorities: int = 3) -> list[dict[str, Any]]:
    """A keyspace as the old migration 1 left it (with its SAI indexes where SAI exists), holding ``count``
    certificates written the old way: into ``certificates`` alone."""
    session.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    session.set_keyspace(keyspace)
    session.execute("CREATE TABLE schema_migrations (version int PRIMARY KEY, description text, applied_at timestamp)")
    for statement in m.MIGRATIONS[0].statements:
        session.execute(statement)
    if SAI:
        for statement in SAI_ERA_INDEXES:
            session.execute(statement)
    session.execute(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES (1, 'sai era', toTimestamp(now()))"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    owners = [uuid.uuid4() for _ in range(authorities)]
    insert = session.prepare(
        "INSERT INTO certificates (id, authority_id, kind, serial_number, common_name, dns_names, ip_addresses, "
        "key_algorithm, not_before, not_after, certificate_pem, created_at, created_by) "
        "VALUES (?, ?, 'node', ?, ?, [], [], 'ecdsa-p256', ?, ?, 'pem', ?, 'admin')"
    )
    rows = []
    for i in range(count):
        row = {
            "id": uuid.uuid4(),
            "authority_id": owners[i % authorities],
            "not_after": now + timedelta(days=1 + i % 400),
        }
        rows.append(row)
    futures = [
        session.execute_async(insert, (r["id"], r["authority_id"], f"{i:X}", f"n{i}", now, r["not_after"], now))
        for i, r in enumerate(rows)
    ]
    for future in futures:
        future.result()
    return rows


async def everything(repository: Repository, limit: int, **query: Any) -> list[uuid.UUID]:
    seen, token = [], None
    while True:
        page, token = await repository.certificates(datetime.now(UTC), limit=limit, page_token=token, **query)
        seen += [c.id for c in page]
        if token is None:
            return seen


def check_listing(database: Database, secrets_dir: Secrets, rows: list[dict[str, Any]]) -> None:
    repository = Repository(database, PageTokens(load_settings().master_key_bytes))
    now = datetime.now(UTC)
    within_30 = {r["id"] for r in rows if r["not_after"] <= now + timedelta(days=30)}
    owner = rows[0]["authority_id"]

    async def scenario() -> None:
        for limit in (7, 100):
            listed = await everything(repository, limit, authority_id=owner, expiring_before=None)
            assert sorted(listed) == sorted(r["id"] for r in rows if r["authority_id"] == owner)
            expiring = await everything(repository, limit, authority_id=None, expiring_before=now + timedelta(days=30))
            assert sorted(expiring) == sorted(within_30)
            both = await everything(repository, limit, authority_id=owner, expiring_before=now + timedelta(days=30))
            assert sorted(both) == sorted(
                i for i in within_30 if i in {r["id"] for r in rows if r["authority_id"] == owner}
            )
        everyone = await everything(repository, 1000, authority_id=None, expiring_before=now + timedelta(days=36500))
        assert sorted(everyone) == sorted(r["id"] for r in rows)

    asyncio.run(scenario())


def migrate_then_list(secrets_dir: Secrets, rows: list[dict[str, Any]]) -> None:
    """The service connects, runs migration 2 (only), and lists every SAI-era certificate."""
    database = Database(load_settings())
    try:
        assert database.connect() == [2]
        check_listing(database, secrets_dir, rows)
    finally:
        database.close()


def test_sai_era_database_is_backfilled_and_keeps_its_indexes(
    admin: Session, fresh_keyspace: str, env: None, secrets_dir: Secrets
) -> None:
    rows = sai_era_database(admin, fresh_keyspace, 450)
    migrate_then_list(secrets_dir, rows)
    progress = admin.execute(f"SELECT done FROM {fresh_keyspace}.migration_progress WHERE version = 2").one()
    assert progress.done
    indexes = {
        r.index_name
        for r in admin.execute(
            "SELECT index_name FROM system_schema.indexes WHERE keyspace_name = %s", (fresh_keyspace,)
        )
    }
    assert indexes == ({"certificates_by_authority", "certificates_by_not_after"} if SAI else set())


class Crash(Exception):
    pass


def test_backfill_resumes_after_a_crash(admin: Session, fresh_keyspace: str, env: None, secrets_dir: Secrets) -> None:
    rows = sai_era_database(admin, fresh_keyspace, 300)
    for statement in m.MIGRATIONS[1].statements:
        admin.execute(statement)

    class CrashingLease:
        renewals = 0

        def renew(self) -> None:
            self.renewals += 1
            if self.renewals == 2:
                raise Crash()

    cluster = admin_cluster()
    try:
        session = cluster.connect(fresh_keyspace)
        session.row_factory = dict_factory  # as the service's sessions
        with pytest.raises(Crash):
            m._backfill_query_tables(session, CrashingLease(), chunk=50)  # type: ignore[arg-type]
    finally:
        cluster.shutdown()
    progress = admin.execute("SELECT position, done FROM migration_progress WHERE version = 2").one()
    assert not progress.done and progress.position > -(2**63)
    written_before = len(list(admin.execute("SELECT id FROM certificates_by_expiry")))  # partition scan, small
    assert 0 < written_before < len(rows)

    migrate_then_list(secrets_dir, rows)
    assert admin.execute("SELECT done FROM migration_progress WHERE version = 2").one().done


def test_replicas_migrating_at_once(admin: Session, fresh_keyspace: str, env: None) -> None:
    databases = [Database(load_settings()) for _ in range(4)]
    results: list[object] = []
    start = threading.Barrier(len(databases))

    def run(database: Database) -> None:
        start.wait()
        try:
            results.append(database.connect())
        except Exception as error:
            results.append(error)

    threads = [threading.Thread(target=run, args=(d,)) for d in databases]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        for d in databases:
            d.close()
    assert sorted(map(str, results)) == sorted(["[1, 2]"] + ["[]"] * (len(databases) - 1)), results
    tables = {
        r.table_name
        for r in admin.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (fresh_keyspace,)
        )
    }
    assert tables == set(m.TABLES)
    assert admin.execute(f"SELECT * FROM {fresh_keyspace}.schema_lease").one() is None, "the lease was not released"


def test_fresh_database_never_creates_an_index(
    admin: Session, fresh_keyspace: str, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyspaces has no CREATE INDEX (and Cassandra 4.1 no SAI): a statement creating one fails here."""
    real = Session.execute
    seen: list[str] = []

    def execute(self: Session, query: Any, *args: Any, **kwargs: Any) -> Any:
        text = str(getattr(query, "query_string", query))
        seen.append(text)
        if "CREATE INDEX" in text.upper() or "CREATE CUSTOM INDEX" in text.upper():
            raise AssertionError(f"an index was created: {text}")
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(Session, "execute", execute)
    database = Database(load_settings())
    try:
        assert database.connect() == [1, 2]
    finally:
        database.close()
    assert any("certificates_by_expiry" in s for s in seen)
    indexes = list(
        admin.execute("SELECT index_name FROM system_schema.indexes WHERE keyspace_name = %s", (fresh_keyspace,))
    )
    assert indexes == []


def test_lease_is_exclusive_and_taken_over_when_expired(admin: Session, fresh_keyspace: str, env: None) -> None:
    database = Database(load_settings())
    database.connect()
    database.close()
    cluster = admin_cluster()
    session = cluster.connect(fresh_keyspace)
    session.row_factory = dict_factory  # as the service's sessions
    clock = [1_000_000.0]
    first = m.Lease(session, seconds=30, clock=lambda: clock[0])
    second = m.Lease(session, seconds=30, clock=lambda: clock[0])
    assert first.try_acquire() and first.try_acquire()  # re-entrant for its owner
    assert not second.try_acquire()
    first.renew()
    clock[0] += 31  # the first holder stalled past its expiry
    assert second.try_acquire()
    with pytest.raises(m.LeaseLost):
        first.renew()
    first.release()  # not its lease any more: changes nothing
    assert not first.try_acquire()
    second.release()
    assert first.try_acquire()
    first.release()
    cluster.shutdown()


@pytest.mark.parametrize(("setting", "expected"), [(None, 5), ("4", 4)])
def test_protocol_version_is_negotiated_or_pinned(
    env: None, monkeypatch: pytest.MonkeyPatch, setting: str | None, expected: int
) -> None:
    """Negotiated: v5 on Cassandra 4.1 and 5.0. Pinned to v4 as in Keyspaces mode: everything still works."""
    if setting is not None:
        monkeypatch.setenv("CSM_CASSANDRA_PROTOCOL_VERSION", setting)
    database = Database(load_settings())
    try:
        database.connect()
        connection = database._current()
        assert connection.cluster.protocol_version == expected
    finally:
        database.close()


def test_a_reconnect_does_not_migrate_again(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(load_settings())
    try:
        assert database.connect() == [1, 2]

        def no(*args: object, **kwargs: object) -> list[int]:
            raise AssertionError("migrations ran again on reconnect")

        monkeypatch.setattr("csm.store.database.migrate", no)
        assert asyncio.run(database.reconnect())
        assert asyncio.run(database.execute("probe", "SELECT id FROM certificates LIMIT 1")).one() is None
    finally:
        database.close()
