"""Keyspaces mode and paging without a Cassandra: the settings it implies, waiting for tables to turn
ACTIVE, and pages that follow Cassandra's paging state across empty pages."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from cassandra import InvalidRequest
from csm.config import ConfigError, load_settings
from csm.pagination import PageTokens
from csm.store import Database, Repository
from csm.store.keyspaces import created, wait_until_active
from csm.store.migrations import replication
from harness.service import Secrets


def keyspaces(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, **extra: str) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    monkeypatch.setenv("CSM_CASSANDRA_MODE", "keyspaces")
    monkeypatch.setenv("CSM_CASSANDRA_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("CSM_CASSANDRA_TLS_CA_FILE", str(ca))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def test_cassandra_mode_negotiates_and_checks_no_configured_name(secrets_dir: Secrets) -> None:
    s = load_settings()
    assert s.effective_protocol_version is None
    assert s.effective_replication_class == "SimpleStrategy"
    assert s.effective_tls_server_name is None and s.effective_auth == "password"
    assert Database(s).ssl_options() is None


def test_keyspaces_defaults(secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    keyspaces(monkeypatch, tmp_path)
    s = load_settings()
    assert s.effective_protocol_version == 4
    assert s.effective_replication_class == "SingleRegionStrategy"
    assert s.effective_tls_server_name == "cassandra.eu-west-1.amazonaws.com"
    assert s.effective_auth == "sigv4"
    assert replication(s.effective_replication_class, 3) == "{'class': 'SingleRegionStrategy'}"


def test_keyspaces_with_service_credentials_and_an_explicit_name(
    secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    keyspaces(
        monkeypatch,
        tmp_path,
        CSM_CASSANDRA_USERNAME="u",
        CSM_CASSANDRA_PASSWORD="p",
        CSM_CASSANDRA_TLS_SERVER_NAME="cassandra.eu-west-1.api.aws",
        CSM_CASSANDRA_REPLICATION_CLASS="NetworkTopologyStrategy",
    )
    s = load_settings()
    assert s.effective_auth == "password" and s.effective_tls_server_name == "cassandra.eu-west-1.api.aws"
    assert s.effective_replication_class == "NetworkTopologyStrategy"


def test_sigv4_provider_uses_the_role(secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The default credential chain (here: environment variables, as a task role's would be) signs the login."""
    keyspaces(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    provider = Database(load_settings()).auth_provider()
    assert type(provider).__name__ == "SigV4AuthProvider"
    authenticator = provider.new_authenticator("cassandra.eu-west-1.amazonaws.com")
    assert authenticator.initial_response() == b"SigV4\x00\x00"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"CSM_CASSANDRA_MODE": "keyspaces", "CSM_CASSANDRA_AWS_REGION": "eu-west-1"}, "Keyspaces only accepts TLS"),
        ({"CSM_CASSANDRA_MODE": "keyspaces"}, "cassandra_aws_region"),
        ({"CSM_CASSANDRA_REPLICATION_CLASS": "SingleRegionStrategy"}, "needs cassandra_mode keyspaces"),
        ({"CSM_CASSANDRA_AUTH": "sigv4"}, "sigv4 needs cassandra_mode keyspaces"),
        ({"CSM_CASSANDRA_PROTOCOL_VERSION": "6"}, "CSM_CASSANDRA_PROTOCOL_VERSION"),
        ({"CSM_CASSANDRA_TLS_SERVER_NAME": "bad name"}, "CSM_CASSANDRA_TLS_SERVER_NAME"),
    ],
)
def test_invalid_keyspaces_settings(
    secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], message: str
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert message in str(raised.value)


@dataclass
class FakeSession:
    answers: list[Any]
    queries: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        self.queries.append((query, params))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer

        class Result:
            def one(self) -> Any:
                return answer

        return Result()


def test_created_names() -> None:
    assert created("CREATE TABLE IF NOT EXISTS certificates (id uuid PRIMARY KEY)") == ("table", "certificates")
    assert created("CREATE KEYSPACE IF NOT EXISTS csm WITH replication = {}") == ("keyspace", "csm")
    assert created("INSERT INTO x (a) VALUES (1)") is None


def test_waits_until_the_table_is_active() -> None:
    session = FakeSession([None, {"status": "CREATING"}, {"status": "ACTIVE"}])
    sleeps: list[float] = []
    wait_until_active(session, "csm", "CREATE TABLE IF NOT EXISTS t (a int PRIMARY KEY)", 60, sleep=sleeps.append)  # type: ignore[arg-type]
    assert len(sleeps) == 2
    assert session.queries[0][1] == ("csm", "t") and "system_schema_mcs.tables" in session.queries[0][0]


def test_gives_up_on_a_table_that_stays_creating() -> None:
    session = FakeSession([{"status": "CREATING"}] * 5)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(TimeoutError, match="CREATING"):
        wait_until_active(
            session, "csm", "CREATE TABLE IF NOT EXISTS t (a int)", 2.5, sleep=sleep, clock=lambda: now[0]
        )  # type: ignore[arg-type]


def test_a_cassandra_without_system_schema_mcs_needs_no_wait() -> None:
    session = FakeSession([InvalidRequest("Keyspace system_schema_mcs does not exist")])
    wait_until_active(session, "csm", "CREATE KEYSPACE IF NOT EXISTS csm WITH x", 60, sleep=pytest.fail)  # type: ignore[arg-type]


class PagedDatabase:
    """Answers one query in pages as Amazon Keyspaces may: some of them empty, with a paging state."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.calls = 0

    async def execute(
        self, operation: str, cql: str, params: Any = (), *, fetch_size: Any = None, paging_state: Any = None
    ) -> Any:
        index = int(paging_state or b"0")
        self.calls += 1

        class Result:
            current_rows = self.pages[index]
            paging_state = str(index + 1).encode() if index + 1 < len(self.pages) else None

            def one(inner) -> Any:
                return inner.current_rows[0] if inner.current_rows else None

        return Result()


def test_a_page_follows_the_paging_state_across_empty_pages() -> None:
    pages: list[list[dict[str, Any]]] = [[], [], [{"id": 1}], [], [{"id": 2}], [{"id": 3}], []]
    database = PagedDatabase(pages)
    repository = Repository(database, PageTokens(b"k" * 32))  # type: ignore[arg-type]

    async def walk() -> list[Any]:
        seen, token = [], None
        for _ in range(10):
            rows, token = await repository._page("op", "SELECT", (), 2, token)
            seen.append([r["id"] for r in rows])
            if token is None:
                return seen
        raise AssertionError("no end")

    assert asyncio.run(walk()) == [[1, 2], [3]]
    assert database.calls == len(pages)


def test_an_empty_list_after_empty_pages_has_no_token() -> None:
    repository = Repository(PagedDatabase([[], [], []]), PageTokens(b"k" * 32))  # type: ignore[arg-type]
    rows, token = asyncio.run(repository._page("op", "SELECT", (), 5, None))
    assert rows == [] and token is None
    assert datetime.now(UTC)


class FakeFuture:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def add_callbacks(self, ok: Any, failed: Any) -> None:
        ok(None)

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return "done"


def test_a_batch_whose_batch_log_times_out_goes_again_unlogged(secrets_dir: Secrets) -> None:
    """For the seconds before a killed node is convicted, a logged batch may fail to write its batch log
    (nothing applied): the same idempotent statements go again unlogged."""
    from cassandra.query import BatchType

    from cassandra import WriteTimeout, WriteType
    from csm.store.database import _Connection

    sent: list[Any] = []

    class Session:
        def execute_async(self, statement: Any) -> FakeFuture:
            sent.append(statement)
            first = len(sent) == 1
            return FakeFuture(WriteTimeout("timed out", write_type=WriteType.BATCH_LOG) if first else None)

    class Prepared:
        def bind(self, params: Any) -> Any:
            from cassandra.query import SimpleStatement

            return SimpleStatement("INSERT")

    database = Database(load_settings())
    connection = _Connection(None, Session(), {"INSERT INTO a (x) VALUES (?)": Prepared()})  # type: ignore[arg-type]
    database._connection = connection
    asyncio.run(database.execute_batch("op", [("INSERT INTO a (x) VALUES (?)", (1,))] * 2))
    assert [s.batch_type for s in sent] == [BatchType.LOGGED, BatchType.UNLOGGED]
    assert len(sent[1]._statements_and_parameters) == 2
