"""Shared fixtures: an isolated environment, secrets, and (for tests marked ``cassandra``) the host
Cassandra from cassandra/run and a ``csm serve`` process on a free loopback port."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.service import (
    CASSANDRA,
    Secrets,
    Service,
    admin_cluster,
    cassandra_listening,
    make_secrets,
    run_cassandra,
    service_env,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CSM_* variable leaks in from the caller, and no /run/secrets is read by accident."""
    for name in list(os.environ):
        if name.startswith("CSM_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "no-secrets"
    empty.mkdir()
    monkeypatch.setenv("CSM_SECRETS_DIR", str(empty))


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Secrets:
    made = make_secrets(tmp_path / "secrets")
    monkeypatch.setenv("CSM_SECRETS_DIR", str(made.directory))
    return made


@pytest.fixture(scope="session")
def session_secrets(tmp_path_factory: pytest.TempPathFactory) -> Secrets:
    return make_secrets(tmp_path_factory.mktemp("session") / "secrets")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop Cassandra run last, after every test that needs it running."""
    items.sort(key=lambda item: item.get_closest_marker("outage") is not None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "outage: stops and restarts the host Cassandra (runs last)")


@pytest.fixture(scope="session")
def cassandra() -> Iterator[None]:
    """The tests' Cassandra (``harness.service.CASSANDRA``), started by cassandra/run if it is not up; a node
    other than the default host Cassandra (127.0.0.1:9042, kept for the other suites) that this session
    started is stopped at its end. Under CI=true a Cassandra that cannot be started fails the test;
    elsewhere it skips it."""
    if cassandra_listening():
        yield
        return
    result = run_cassandra("start")
    if result.returncode != 0 or not cassandra_listening():
        message = f"cassandra/run start failed ({result.returncode}):\n{result.stderr[-3000:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield
    if CASSANDRA != ("127.0.0.1", 9042):
        run_cassandra("stop")


@pytest.fixture(scope="session")
def keyspace(cassandra: None) -> Iterator[str]:
    """A keyspace of this test session's own, dropped at the end."""
    name = f"csm_test_{secrets.token_hex(4)}"
    yield name
    cluster = admin_cluster()
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}")
    except Exception as error:  # Cassandra may be down after a failed outage test; the keyspace stays
        print(f"could not drop keyspace {name}: {error}")
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def service(keyspace: str, session_secrets: Secrets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service for the session's Cassandra tests, ready before the first test uses it."""
    running = Service(service_env(session_secrets, keyspace), tmp_path_factory.mktemp("service") / "csm.log")
    try:
        running.wait_for("/health/ready", 200, timeout=90)
        yield running
    finally:
        running.stop()
