"""TLS to a real TLS-only Cassandra node whose certificate names DNS names only (no IP address), like
Amazon Keyspaces' (cassandra.<region>.amazonaws.com) and many external clusters'. The service reaches
it by address and checks the certificate against CSM_CASSANDRA_TLS_SERVER_NAME.

Also Keyspaces mode emulated on that node: protocol v4 pinned, the regional endpoint's name checked
by default, NetworkTopologyStrategy (the stack's), no index created, a password login (SigV4 and
``system_schema_mcs`` only AWS can answer)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cassandra.cluster import NoHostAvailable
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csm.config import load_settings
from csm.store import Database
from harness.service import CASSANDRA, CASSANDRA_VERSION, Secrets, Service, bearer, run_cassandra, service_env

pytestmark = pytest.mark.cassandra

# The TLS node: a loopback alias of its own next to the tests' plain node.
TLS_HOST = os.environ.get("CSM_TEST_CASSANDRA_TLS_HOST") or f"127.0.2.{CASSANDRA[0].rsplit('.', 1)[1]}"
NAME = "cassandra.csm.test"
REGION = "eu-west-1"
KEYSPACES_NAME = f"cassandra.{REGION}.amazonaws.com"
PASSWORD = "keystore-pass"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_node_tls(directory: Path) -> tuple[Path, Path]:
    """A CA (ca.pem) and the node's PKCS12 keystore: a server certificate with DNS names only."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("csm test Cassandra CA"))
        .issuer_name(_name("csm test Cassandra CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    node_key = ec.generate_private_key(ec.SECP256R1())
    node = (
        x509.CertificateBuilder()
        .subject_name(_name(NAME))
        .issuer_name(ca.subject)
        .public_key(node_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME), x509.DNSName(KEYSPACES_NAME)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, keystore = directory / "ca.pem", directory / "keystore.p12"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"node", node_key, node, [ca], serialization.BestAvailableEncryption(PASSWORD.encode())
        )
    )
    return ca_file, keystore


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory, cassandra: None) -> Iterator[Path]:
    """Starts the TLS-only node (stopping one left from an earlier run: its keystore is gone); yields the CA."""
    ca_file, keystore = make_node_tls(tmp_path_factory.mktemp("tls-node"))
    env = {
        "CASSANDRA_HOST": TLS_HOST,
        "CASSANDRA_CQL_PORT": "9042",
        "CASSANDRA_TLS_KEYSTORE": str(keystore),
        "CASSANDRA_TLS_KEYSTORE_PASSWORD": PASSWORD,
    }
    run_cassandra("stop", **env)
    started = run_cassandra("start", **env)
    try:
        if started.returncode != 0:
            message = f"the TLS node did not start:\n{started.stderr[-3000:]}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        yield ca_file
    finally:
        run_cassandra("stop", **env)


@pytest.fixture
def tls_env(tls_node: Path, secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = service_env(
        secrets_dir,
        f"csm_tls_{os.getpid()}",
        CSM_CASSANDRA_CONTACT_POINTS=TLS_HOST,
        CSM_CASSANDRA_PORT="9042",
        CSM_CASSANDRA_TLS_CA_FILE=str(tls_node),
        CSM_CASSANDRA_CONNECT_TIMEOUT="5",
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def connect_error(monkeypatch: pytest.MonkeyPatch, **settings: str) -> str:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    database = Database(load_settings())
    try:
        with pytest.raises(NoHostAvailable) as raised:
            database.connect()
        return str(raised.value)
    finally:
        database.close()


def test_the_node_refuses_plain_cql(tls_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSM_CASSANDRA_TLS_CA_FILE")
    connect_error(monkeypatch)  # 5.0 resets the connection; 4.1 answers the plain bytes with a protocol error


def test_without_a_server_name_the_address_does_not_match(
    tls_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the service did before: the driver checks the IP address, which the certificate does not name."""
    error = connect_error(monkeypatch)
    assert f"IP address mismatch, certificate is not valid for '{TLS_HOST}'" in error, error


def test_a_wrong_server_name_is_refused(tls_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    error = connect_error(monkeypatch, CSM_CASSANDRA_TLS_SERVER_NAME="other.csm.test")
    assert "Hostname mismatch, certificate is not valid for 'other.csm.test'" in error, error


def test_an_untrusted_node_is_refused(tls_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stranger, _ = make_node_tls(tmp_path / "stranger")
    error = connect_error(monkeypatch, CSM_CASSANDRA_TLS_SERVER_NAME=NAME, CSM_CASSANDRA_TLS_CA_FILE=str(stranger))
    assert "CERTIFICATE_VERIFY_FAILED" in error and "mismatch" not in error, error


def test_service_over_tls_checks_the_configured_name(
    tls_env: dict[str, str], tmp_path: Path, secrets_dir: Secrets
) -> None:
    service = Service({**tls_env, "CSM_CASSANDRA_TLS_SERVER_NAME": NAME}, tmp_path / "csm.log")
    try:
        service.wait_for("/health/ready", 200, timeout=90)
        admin = bearer(secrets_dir.admin_token)
        authority = service.client.post("/v1/authorities", json={"name": "TLS Root"}, headers=admin)
        assert authority.status_code == 201, authority.text
        issued = service.client.post(
            "/v1/certificates", json={"authority_id": authority.json()["id"], "common_name": "over-tls"}, headers=admin
        )
        assert issued.status_code == 201, issued.text
        listed = service.client.get("/v1/certificates", params={"authority_id": authority.json()["id"]}, headers=admin)
        assert [c["id"] for c in listed.json()["items"]] == [issued.json()["id"]]
    finally:
        service.stop()


def test_keyspaces_mode_emulated(tls_env: dict[str, str], tmp_path: Path, secrets_dir: Secrets) -> None:
    """Keyspaces mode against the TLS node: the regional endpoint's name is checked by default, protocol v4
    is pinned, the stack's NetworkTopologyStrategy, LOCAL_QUORUM, and not one index created."""
    env = {
        **tls_env,
        "CSM_CASSANDRA_MODE": "keyspaces",
        "CSM_CASSANDRA_AWS_REGION": REGION,
        "CSM_CASSANDRA_REPLICATION_CLASS": "NetworkTopologyStrategy",
        "CSM_CASSANDRA_KEYSPACE": f"csm_ks_{os.getpid()}",
    }
    service = Service(env, tmp_path / "csm.log")
    try:
        service.wait_for("/health/ready", 200, timeout=90)
        info = service.client.get("/info").json()
        assert info["config"]["cassandra_mode"] == "keyspaces"
        admin = bearer(secrets_dir.admin_token)
        authority = service.client.post("/v1/authorities", json={"name": "Keyspaces Root"}, headers=admin).json()
        made = {
            service.client.post(
                "/v1/certificates", json={"authority_id": authority["id"], "common_name": f"k{i}"}, headers=admin
            ).json()["id"]
            for i in range(3)
        }
        seen, token = [], None
        while True:
            params = {"expiring_within_days": 400, "limit": 1, **({"page_token": token} if token else {})}
            page = service.client.get("/v1/certificates", params=params, headers=admin).json()
            seen += [c["id"] for c in page["items"]]
            token = page["next_page_token"]
            if token is None:
                break
        assert made <= set(seen)
    finally:
        service.stop()
    records = [r for r in service.log_records() if r.get("message") == "connected to Cassandra"]
    assert records, service.log()[-2000:]


def test_keyspaces_mode_pins_protocol_v4_and_checks_the_regional_name(
    tls_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSM_CASSANDRA_MODE", "keyspaces")
    monkeypatch.setenv("CSM_CASSANDRA_AWS_REGION", REGION)
    monkeypatch.setenv("CSM_CASSANDRA_REPLICATION_CLASS", "NetworkTopologyStrategy")
    database = Database(load_settings())
    try:
        assert database.ssl_options() == {"server_hostname": KEYSPACES_NAME}
        database.connect()
        assert database._current().cluster.protocol_version == 4
    finally:
        database.close()
    assert CASSANDRA_VERSION  # the node runs the version under test
