"""The Cassandra connection: connect with backoff, migrate, reconnect, run statements from asyncio, close."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    ResultSet,
    Session,
)
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement, dict_factory

from cassandra import ConsistencyLevel, OperationTimedOut, RequestExecutionException, WriteTimeout, WriteType
from csm.config import Settings
from csm.metrics import BATCHLOG_FALLBACKS, CASSANDRA_QUERY_SECONDS, CASSANDRA_RECONNECTS
from csm.store.keyspaces import wait_until_active
from csm.store.migrations import migrate

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
# Ready within 5 s of Cassandra's return: this wait plus one readiness interval must stay below it.
BACKOFF_MAX = 2.0
# Errors that mean "Cassandra cannot answer now", as opposed to a bad statement.
_UNAVAILABLE = (NoHostAvailable, OperationTimedOut, RequestExecutionException, ConnectionException, OSError)


class StoreUnavailable(Exception):
    """Cassandra cannot serve the request now (not connected, no host, timeout)."""


def _describe(error: BaseException) -> str:
    if isinstance(error, NoHostAvailable):
        reasons = "; ".join(f"{host}: {type(e).__name__}: {e}" for host, e in error.errors.items())
        return f"no Cassandra host available ({reasons or 'none reachable'})"
    return f"{type(error).__name__}: {error}"


@dataclass
class _Connection:
    """A Cluster, its session, and the statements prepared through it (a new Cluster knows none)."""

    cluster: Cluster
    session: Session
    prepared: dict[str, PreparedStatement] = field(default_factory=dict)


class Database:
    """One driver session at a time for the process. ``connect_forever`` retries with exponential
    backoff; once connected, the driver reconnects to nodes that come back at the address it knows,
    and ``reconnect`` replaces the whole session for a Cassandra that came back at a new one."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connection: _Connection | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._migrated = False
        self.last_error = "not connected yet"
        # the last connect's durations in seconds: connect_s (the driver), migrations_s (the schema check)
        self.connect_timings: dict[str, float] = {}

    @property
    def connected(self) -> bool:
        return self._connection is not None

    def _new_cluster(self) -> Cluster:
        s = self._settings
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=s.cassandra_local_dc)),
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=s.cassandra_request_timeout,
            row_factory=dict_factory,
        )
        options: dict[str, Any] = {}
        if s.effective_protocol_version is not None:  # else the driver negotiates (v5 on 4.0+, v4 on Keyspaces)
            options["protocol_version"] = s.effective_protocol_version
        return Cluster(
            contact_points=s.cassandra_contact_points,
            port=s.cassandra_port,
            auth_provider=self.auth_provider(),
            ssl_context=self.ssl_context(),
            ssl_options=self.ssl_options(),
            **options,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            reconnection_policy=ExponentialReconnectionPolicy(base_delay=BACKOFF_FIRST, max_delay=BACKOFF_MAX),
            connect_timeout=s.cassandra_connect_timeout,
            control_connection_timeout=s.cassandra_connect_timeout,
            idle_heartbeat_interval=10,
            idle_heartbeat_timeout=5,
        )

    def auth_provider(self) -> Any:
        s = self._settings
        if s.effective_auth == "sigv4":
            # The task's or pod's role, through the default AWS credential chain (no stored secret).
            import boto3
            from cassandra_sigv4.auth import SigV4AuthProvider

            return SigV4AuthProvider(boto3.Session(region_name=s.cassandra_aws_region))
        if s.cassandra_username and s.cassandra_password:
            return PlainTextAuthProvider(s.cassandra_username, s.cassandra_password.get_secret_value())
        return None

    def ssl_options(self) -> dict[str, str] | None:
        """The name the node certificates are checked against. Without it the driver would check the
        address it connects to, which certificates naming only DNS names (Keyspaces') never carry."""
        name = self._settings.effective_tls_server_name
        if (
            self._settings.cassandra_tls_ca_file is None
            or name is None
            or not self._settings.cassandra_tls_verify_hostname
        ):
            return None
        return {"server_hostname": name}

    def ssl_context(self) -> ssl.SSLContext | None:
        s = self._settings
        if s.cassandra_tls_ca_file is None:
            return None
        context = ssl.create_default_context(cafile=str(s.cassandra_tls_ca_file))
        context.check_hostname = s.cassandra_tls_verify_hostname
        if s.cassandra_tls_cert_file and s.cassandra_tls_key_file:
            context.load_cert_chain(s.cassandra_tls_cert_file, s.cassandra_tls_key_file)
        return context

    def connect(self) -> list[int]:
        """Connects a new Cluster, which resolves the contact points again, applies migrations (the first
        time only: a reconnect finds the schema in place), swaps it in for the current one and shuts that
        one down (blocking); returns the migration versions applied. Requests hold on to the connection
        they started with: one caught by the swap fails as unavailable."""
        s = self._settings
        started = time.perf_counter()
        cluster = self._new_cluster()
        try:
            session = cluster.connect()
            connected = time.perf_counter()
            applied: list[int] = []
            if self._migrated:
                session.set_keyspace(s.cassandra_keyspace)
            else:
                on_ddl = None
                if s.cassandra_mode == "keyspaces":

                    def on_ddl(ddl_session: Session, statement: str) -> None:
                        wait_until_active(ddl_session, s.cassandra_keyspace, statement, s.cassandra_schema_wait)

                applied = migrate(
                    session,
                    s.cassandra_keyspace,
                    s.effective_replication_class,
                    s.cassandra_replication_factor,
                    on_ddl=on_ddl,
                )
                self._migrated = True
            self.connect_timings = {
                "connect_s": connected - started,
                "migrations_s": time.perf_counter() - connected,
            }
        except BaseException:
            cluster.shutdown()
            raise
        with self._lock:
            if self._closed:  # closed while this attempt was still connecting
                cluster.shutdown()
                raise StoreUnavailable("the database was closed")
            old, self._connection = self._connection, _Connection(cluster, session)
        if old is not None:
            old.cluster.shutdown()
        return applied

    async def connect_forever(self) -> None:
        """Connects, retrying with exponential backoff until it works (or the task is cancelled)."""
        delay = BACKOFF_FIRST
        while True:
            try:
                applied = await asyncio.to_thread(self.connect)
            except Exception as error:  # whatever stops the connection, keep serving and retry
                self.last_error = _describe(error)
                log.warning(
                    "cannot connect to Cassandra; retrying", extra={"reason": self.last_error, "retry_in": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            self.last_error = ""
            log.info("connected to Cassandra", extra={"migrations_applied": applied})
            return

    async def reconnect(self) -> bool:
        """Replaces the current session with a new one; on failure keeps it. The driver only ever retries
        the addresses it resolved when it connected: a Cassandra that came back at a new address (a
        replaced container) is found only by a new Cluster."""
        try:
            applied = await asyncio.to_thread(self.connect)
        except Exception as error:  # whatever stops the new session, the current one stays
            CASSANDRA_RECONNECTS.labels(outcome="error").inc()
            log.warning("cannot reconnect to Cassandra; keeping the old session", extra={"reason": _describe(error)})
            return False
        CASSANDRA_RECONNECTS.labels(outcome="ok").inc()
        log.info(
            "reconnected to Cassandra",
            extra={"contact_points": self._settings.cassandra_contact_points, "migrations_applied": applied},
        )
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.cluster.shutdown()

    def _current(self) -> _Connection:
        connection = self._connection
        if connection is None:
            raise StoreUnavailable(f"Cassandra is not connected: {self.last_error}")
        return connection

    async def _prepare(self, connection: _Connection, cql: str) -> PreparedStatement:
        if cql not in connection.prepared:
            prepare = asyncio.to_thread(connection.session.prepare, cql)
            connection.prepared[cql] = await self._timed("prepare", prepare)
        return connection.prepared[cql]

    async def execute(
        self,
        operation: str,
        cql: str,
        params: Sequence[Any] = (),
        *,
        fetch_size: int | None = None,
        paging_state: bytes | None = None,
    ) -> ResultSet:
        """Runs a prepared statement; ``operation`` labels its latency metric."""
        connection = self._current()
        bound = (await self._prepare(connection, cql)).bind(params)
        bound.fetch_size = fetch_size
        # Every statement but a conditional update writes the same thing twice: on a node lost mid-request
        # (kill -9, rolling restart), the driver may send it again to the next replica.
        bound.is_idempotent = _idempotent(cql)
        future = connection.session.execute_async(bound, paging_state=paging_state)
        return await self._timed(operation, _result(future))

    async def execute_batch(self, operation: str, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Runs statements as one logged (atomic) batch."""
        connection = self._current()
        bound = [(await self._prepare(connection, cql)).bind(params) for cql, params in statements]
        idempotent = all(_idempotent(cql) for cql, _ in statements)
        batch = BatchStatement(BatchType.LOGGED)
        for statement in bound:
            batch.add(statement)
        batch.is_idempotent = idempotent
        try:
            await self._timed(operation, _result(connection.session.execute_async(batch)))
        except StoreUnavailable as error:
            if not (idempotent and _batchlog_timeout(error.__cause__)):
                raise
            # The batch log could not be written: nothing of the batch was applied. That happens for the
            # seconds after a node dies and before the others' failure detector convicts it (with three
            # nodes every batch log write needs the dead one). Each statement is idempotent, so the
            # same statements go as an unlogged batch, each at LOCAL_QUORUM: a success is as durable as
            # the logged one's; only a failure may leave part applied, never acknowledged.
            log.warning("batch log unavailable; writing the batch unlogged", extra={"operation": operation})
            BATCHLOG_FALLBACKS.inc()
            unlogged = BatchStatement(BatchType.UNLOGGED)
            for statement in bound:
                unlogged.add(statement)
            unlogged.is_idempotent = True
            await self._timed(operation, _result(connection.session.execute_async(unlogged)))

    async def ping(self) -> None:
        """A cheap query that succeeds only when a node answers."""
        session = self._current().session
        await self._timed("ping", _result(session.execute_async("SELECT release_version FROM system.local")))

    async def _timed(self, operation: str, awaitable: Any) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await awaitable
            outcome = "ok"
            return result
        except _UNAVAILABLE as error:
            raise StoreUnavailable(_describe(error)) from error
        finally:
            CASSANDRA_QUERY_SECONDS.labels(operation=operation, outcome=outcome).observe(time.perf_counter() - started)


def _batchlog_timeout(error: BaseException | None) -> bool:
    write_type = getattr(error, "write_type", None)
    return isinstance(error, WriteTimeout) and write_type in (WriteType.BATCH_LOG, "BATCH_LOG")


def _idempotent(cql: str) -> bool:
    """Whether running ``cql`` twice leaves what running it once does: not a lightweight transaction,
    whose second run answers [applied] = false."""
    return " IF " not in cql.upper()


async def _result(future: ResponseFuture) -> ResultSet:
    """Awaits a driver ResponseFuture (whose callbacks run on the driver's I/O thread)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def settle(_: object) -> None:
        loop.call_soon_threadsafe(finish)

    future.add_callbacks(settle, settle)
    await done
    return future.result()
