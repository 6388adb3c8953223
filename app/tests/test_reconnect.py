"""Cassandra back at a new address: the service finds it again by itself, without a restart.

On a Swarm, a replaced Cassandra container comes back under the same name with a new IP. The driver
only ever retries the addresses it resolved when it connected, so the service has to build a new
Cluster, which resolves the contact points again. Here everything is real but the old container: a
TCP relay on 127.0.0.2 in front of the host Cassandra plays it, and closing the relay kills that address.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from csm.config import load_settings
from csm.store import Database
from harness.poll import until
from harness.service import CASSANDRA, Secrets, Service, TcpRelay, bearer, metric, service_env, with_hosts_file

# The old container's address: a loopback alias of its own per tests' node, so runs against several nodes coexist.
OLD_ADDRESS = "127.0.0.2" if CASSANDRA[0] == "127.0.0.1" else f"127.0.1.{CASSANDRA[0].rsplit('.', 1)[1]}"
RECONNECTED = 'csm_cassandra_reconnects_total{outcome="ok"}'


@pytest.fixture
def hosts_file(tmp_path: Path) -> Path:
    """A hosts file that only ``with_hosts_file`` processes see; skips (fails under CI=true) without
    the rights to make a mount namespace."""
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{OLD_ADDRESS} cassandra.test\n")
    probe = subprocess.run(
        [*with_hosts_file(hosts), "getent", "hosts", "cassandra.test"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0 or OLD_ADDRESS not in probe.stdout:
        message = f"cannot give a process its own /etc/hosts (needs root): {probe.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return hosts


@pytest.mark.cassandra
def test_follows_the_contact_point_to_a_new_address(
    keyspace: str, session_secrets: Secrets, hosts_file: Path, tmp_path: Path
) -> None:
    admin = bearer(session_secrets.admin_token)
    relay = TcpRelay((OLD_ADDRESS, CASSANDRA[1]), CASSANDRA)
    env = service_env(session_secrets, keyspace, CSM_CASSANDRA_CONTACT_POINTS="cassandra.test")
    service = Service(env, tmp_path / "csm.log", wrapper=with_hosts_file(hosts_file))
    try:
        service.wait_for("/health/ready", 200, timeout=90)
        assert relay.accepted > 0, "the service did not reach Cassandra through the old address"
        authority = service.client.post("/v1/authorities", json={"name": "Moving Root"}, headers=admin).json()
        assert service.client.get(f"/v1/authorities/{authority['id']}", headers=admin).json() == authority

        relay.close()  # the old container is gone ...
        not_ready = service.wait_for("/health/ready", 503, timeout=30).json()
        assert not_ready["status"] == "not_ready" and "Cassandra" in not_ready["reason"]
        during = service.client.get(f"/v1/authorities/{authority['id']}", headers=admin)
        assert during.status_code == 503 and during.json()["detail"]
        assert service.client.get("/health/live").status_code == 200
        hosts_file.write_text(f"127.0.0.1 localhost\n{CASSANDRA[0]} cassandra.test\n")  # ... its name moved on

        moved = time.monotonic()
        service.wait_for("/health/ready", 200, timeout=30)
        print(f"ready again {time.monotonic() - moved:.1f} s after the name moved")
        assert service.process.poll() is None
        # Statements prepared on the old session, data written through it: all there on the new one.
        assert service.client.get(f"/v1/authorities/{authority['id']}", headers=admin).json() == authority
        issued = service.client.post(
            "/v1/certificates", json={"authority_id": authority["id"], "common_name": "moved"}, headers=admin
        )
        assert issued.status_code == 201, issued.text
        assert metric(service.client.get("/metrics").text, RECONNECTED) >= 1
        records = [r for r in service.log_records() if r.get("message") == "reconnected to Cassandra"]
        assert records and records[0]["contact_points"] == ["cassandra.test"]
    finally:
        relay.close()
        service.stop()


def reconnects(outcome: str) -> float:
    return REGISTRY.get_sample_value("csm_cassandra_reconnects_total", {"outcome": outcome}) or 0.0


def live_clusters() -> int:
    """Driver Clusters not shut down in this process: each runs one scheduler thread until then."""
    return sum(t.name == "Task Scheduler" for t in threading.enumerate())


@pytest.mark.cassandra
def test_reconnect_swaps_sessions_and_leaks_nothing(
    keyspace: str, secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in service_env(secrets_dir, keyspace, CSM_CASSANDRA_CONTACT_POINTS=OLD_ADDRESS).items():
        monkeypatch.setenv(name, value)
    database = Database(load_settings())
    relay = TcpRelay((OLD_ADDRESS, CASSANDRA[1]), CASSANDRA)
    statement = "SELECT release_version FROM system.local"

    async def scenario() -> None:
        nonlocal relay
        await asyncio.to_thread(database.connect)
        await database.execute("probe", statement)
        connected, clusters = relay.open_connections, live_clusters()
        assert connected > 0 and clusters > 0

        failed, succeeded = reconnects("error"), reconnects("ok")
        relay.close()
        assert not await database.reconnect(), "reconnected to an address with nothing behind it"
        assert database.connected, "a failed reconnect must keep the current session"
        assert live_clusters() == clusters, "the Cluster of a failed reconnect was not shut down"
        assert reconnects("error") == failed + 1

        relay = TcpRelay((OLD_ADDRESS, CASSANDRA[1]), CASSANDRA)
        for _ in range(3):
            assert await database.reconnect()
            assert (await database.execute("probe", statement)).one()["release_version"]
        assert live_clusters() == clusters, "an old Cluster outlived the reconnect"
        assert reconnects("ok") == succeeded + 3
        until("old Clusters' connections closed", lambda: relay.open_connections == connected, 10, 0.1)

        database.close()
        assert live_clusters() == clusters - 1
        until("connections closed by close()", lambda: relay.open_connections == 0, 10, 0.1)

    try:
        asyncio.run(scenario())
    finally:
        database.close()
        relay.close()
