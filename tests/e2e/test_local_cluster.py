"""`make up CASSANDRA_NODES=3`: the local stack on three Cassandra nodes, on the real engine.

The nodes must form one ring, CSM's keyspace and system_auth must be replicated to all three, and
with one node stopped the service must stay ready, issue and read at LOCAL_QUORUM, and take new CQL
logins. Going back to `make up` (one node) must stop the other two and leave their data alone.
Under CI=true a missing engine fails, never skips.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
from cassandra.policies import WhiteListRoundRobinPolicy

from harness.poll import until
from harness.proc import docker_json, run

pytestmark = [pytest.mark.e2e, pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ROOT / ".local" / "secrets"
BASE_URL = "http://127.0.0.1:8000"
PROJECT = "csm"
NODES = ("cassandra", "cassandra2", "cassandra3")


def _make_up(nodes: int) -> subprocess.CompletedProcess[str]:
    return run("make", "--no-print-directory", "up", f"CASSANDRA_NODES={nodes}", timeout=1500)


def _harness(*args: str) -> None:
    run(str(ROOT / "localengine" / "csm-local"), *args, timeout=300)


def _containers() -> dict[str, dict]:
    """Running and stopped containers of the stack, by Compose service."""
    ids = run(
        "docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}", timeout=30
    ).stdout.split()
    if not ids:
        return {}
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in docker_json("inspect", *ids, timeout=30)}


def _data_volume(container: dict) -> str:
    (volume,) = [m["Name"] for m in container["Mounts"] if m["Destination"] == "/var/lib/cassandra"]
    return volume


def _address(container: dict) -> str:
    (network,) = container["NetworkSettings"]["Networks"].values()
    return network["IPAddress"]


def _cql(address: str):
    password = (SECRETS / "cassandra_superuser_password").read_text().strip()
    # Every query goes to this node: system.peers and the login are that node's own.
    cluster = Cluster(
        [address],
        auth_provider=PlainTextAuthProvider("cassandra", password),
        protocol_version=5,
        load_balancing_policy=WhiteListRoundRobinPolicy([address]),
        connect_timeout=10,
        control_connection_timeout=10,
    )
    return cluster, cluster.connect()


def _client() -> httpx.Client:
    token = (SECRETS / "api_token").read_text().strip()
    return httpx.Client(base_url=BASE_URL, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _issue(client: httpx.Client, authority_id: str, name: str) -> dict:
    response = client.post(
        "/v1/certificates",
        json={
            "authority_id": authority_id,
            "kind": "node",
            "common_name": name,
            "dns_names": [name],
            "validity_days": 30,
        },
    )
    assert response.status_code == 201, f"issuing {name}: {response.status_code} {response.text}"
    return response.json()


def _wait_healthy(service: str, timeout: float = 600) -> None:
    until(
        f"{service} healthy",
        lambda: _containers()[service]["State"].get("Health", {}).get("Status") == "healthy",
        timeout=timeout,
        interval=3,
    )


@pytest.fixture(scope="module")
def cluster_stack():
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the Docker engine is required under CI=true (run localengine/csm-local prereqs)")
        pytest.skip("no Docker engine")
    was_up = any(c["State"]["Running"] for c in _containers().values())
    result = _make_up(3)
    volumes = [_data_volume(c) for service, c in _containers().items() if service in NODES]
    yield result
    if was_up:
        _make_up(1)
    else:
        _harness("down")
    subprocess.run(["docker", "volume", "rm", "--force", *volumes], capture_output=True, timeout=60)


def test_three_nodes_form_one_ring(cluster_stack):
    containers = _containers()
    for node in NODES:
        assert node in containers, f"no {node} container: {sorted(containers)}"
        assert containers[node]["State"]["Health"]["Status"] == "healthy", f"{node}: {containers[node]['State']}"
    cluster, session = _cql(_address(containers["cassandra"]))
    try:
        peers = {row.peer for row in session.execute("SELECT peer FROM system.peers")}
        hosts = cluster.metadata.all_hosts()
    finally:
        cluster.shutdown()
    assert {str(p) for p in peers} == {_address(containers[n]) for n in NODES[1:]}
    assert len(hosts) == 3, [h.address for h in hosts]


def test_keyspace_and_logins_are_replicated_to_all_three(cluster_stack):
    cluster, session = _cql(_address(_containers()["cassandra"]))
    try:
        replication = {
            row.keyspace_name: row.replication
            for row in session.execute("SELECT keyspace_name, replication FROM system_schema.keyspaces")
        }
    finally:
        cluster.shutdown()
    assert replication["csm"].get("replication_factor", replication["csm"].get("datacenter1")) == "3", replication[
        "csm"
    ]
    assert replication["system_auth"].get("datacenter1") == "3", replication["system_auth"]
    assert "Data:      volumes" in cluster_stack.stdout and "3 Cassandra nodes" in cluster_stack.stdout


def test_one_node_down_keeps_the_service_ready_and_nothing_acknowledged_lost(cluster_stack):
    with _client() as client:
        authority = client.post("/v1/authorities", json={"name": "e2e three-node CA"})
        assert authority.status_code == 201, authority.text
        before = _issue(client, authority.json()["id"], "before.cluster.e2e")
        stopped = _containers()["cassandra3"]
        subprocess.run(["docker", "stop", "-t", "60", stopped["Id"]], check=True, timeout=120, capture_output=True)
        try:
            ready = httpx.get(f"{BASE_URL}/health/ready", timeout=10)
            assert ready.status_code == 200, f"ready with cassandra3 down: {ready.status_code} {ready.text}"
            during = _issue(client, authority.json()["id"], "during.cluster.e2e")
            for certificate in (before, during):
                got = client.get(f"/v1/certificates/{certificate['id']}")
                assert got.status_code == 200, got.text
                assert got.json()["certificate_pem"] == certificate["certificate_pem"]
            # A new login with a node down: system_auth is on every node, so the role is found.
            for node in NODES[:2]:
                cluster, session = _cql(_address(_containers()[node]))
                try:
                    assert session.execute("SELECT release_version FROM system.local").one() is not None
                finally:
                    cluster.shutdown()
        finally:
            subprocess.run(["docker", "start", stopped["Id"]], check=True, timeout=60, capture_output=True)
        _wait_healthy("cassandra3")
        after = client.get(f"/v1/certificates/{during['id']}")
        assert after.status_code == 200, after.text


def test_make_up_with_one_node_stops_the_other_two_and_keeps_their_data(cluster_stack):
    volumes = {node: _data_volume(_containers()[node]) for node in NODES}
    assert len(set(volumes.values())) == 3, volumes
    _make_up(1)
    containers = _containers()
    assert set(containers) == {"cassandra", "csm"}, sorted(containers)
    assert _data_volume(containers["cassandra"]) not in volumes.values(), "the one-node stack uses a three-node volume"
    names = subprocess.run(
        ["docker", "volume", "ls", "--format", "{{.Name}}"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    assert set(volumes.values()) <= set(names), f"a node's volume is gone: {volumes}"
    assert httpx.get(f"{BASE_URL}/health/ready", timeout=10).status_code == 200
