"""Every endpoint against the real Cassandra from cassandra/run, through a real ``csm serve``."""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from csm.models import MAX_DNS_NAMES_CHARS
from harness.poll import until
from harness.service import Secrets, Service, admin_cluster, bearer, service_env

pytestmark = pytest.mark.cassandra


@pytest.fixture(scope="module")
def admin(session_secrets: Secrets) -> dict[str, str]:
    return bearer(session_secrets.admin_token)


@pytest.fixture(scope="module")
def authority(service: Service, admin: dict[str, str]) -> dict[str, object]:
    response = service.client.post("/v1/authorities", json={"name": "Integration Root"}, headers=admin)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def csr_pem(common_name: str, dns: list[str]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_ready_and_healthy(service: Service) -> None:
    assert service.client.get("/health/ready").json()["status"] == "ready"
    health = service.client.get("/health")
    assert health.status_code == 200
    assert health.json()["checks"]["cassandra"]["status"] == "ok"
    assert "csm_ready 1.0" in service.client.get("/metrics").text


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "rsa-3072", "ed25519"])
def test_create_and_read_authority(service: Service, admin: dict[str, str], algorithm: str) -> None:
    created = service.client.post(
        "/v1/authorities",
        json={"name": f"Root {algorithm}", "key_algorithm": algorithm, "validity_days": 30},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    certificate = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert body["key_algorithm"] == algorithm and body["created_by"] == "admin"
    assert "key" not in {k for k in body if "private" in k or "sealed" in k}
    fetched = service.client.get(f"/v1/authorities/{body['id']}", headers=admin)
    assert fetched.json() == body
    listed = service.client.get("/v1/authorities", headers=admin).json()["items"]
    assert body in listed


def test_authority_validity_over_the_maximum_is_400(service: Service, admin: dict[str, str]) -> None:
    response = service.client.post("/v1/authorities", json={"name": "Too long", "validity_days": 99999}, headers=admin)
    assert response.status_code == 400 and "at most 3650" in response.json()["detail"]


def test_issue_with_generated_key_returns_the_key_once(
    service: Service, admin: dict[str, str], authority: dict[str, object]
) -> None:
    response = service.client.post(
        "/v1/certificates",
        json={
            "authority_id": authority["id"],
            "common_name": "node1",
            "dns_names": ["node1.db.example"],
            "ip_addresses": ["10.1.2.3", "::1"],
            "validity_days": 30,
            "key_algorithm": "ed25519",
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    issued = response.json()
    key = serialization.load_pem_private_key(issued["private_key_pem"].encode(), None)
    certificate = x509.load_pem_x509_certificate(issued["certificate_pem"].encode())
    assert certificate.public_key() == key.public_key()
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3"), ipaddress.ip_address("::1")]
    assert issued["ca_certificate_pem"] == authority["certificate_pem"]
    assert issued["status"] == "valid" and issued["kind"] == "node"

    stored = service.client.get(f"/v1/certificates/{issued['id']}", headers=admin)
    assert stored.status_code == 200
    assert "private_key_pem" not in stored.json()
    assert stored.json()["certificate_pem"] == issued["certificate_pem"]
    assert issued["private_key_pem"] not in stored.text


def test_issue_from_csr(service: Service, admin: dict[str, str], authority: dict[str, object]) -> None:
    response = service.client.post(
        "/v1/certificates",
        json={"authority_id": authority["id"], "kind": "client", "csr_pem": csr_pem("app-1", ["app-1.example"])},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    issued = response.json()
    assert issued["private_key_pem"] is None
    assert (issued["common_name"], issued["dns_names"], issued["kind"]) == ("app-1", ["app-1.example"], "client")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----"}, "csr_pem"),
        ({"csr_pem": "garbage"}, "csr_pem"),
        ({"csr_pem": csr_pem("x", []), "key_algorithm": "ed25519"}, "not both"),
        ({"common_name": "x", "validity_days": 400}, "at most 397"),
        ({"common_name": "x", "unexpected": 1}, None),
        ({}, "common_name"),
    ],
)
def test_bad_issue_requests_are_4xx(
    service: Service, admin: dict[str, str], authority: dict[str, object], body: dict[str, object], detail: str | None
) -> None:
    response = service.client.post("/v1/certificates", json={"authority_id": authority["id"], **body}, headers=admin)
    assert 400 <= response.status_code < 500, response.text
    if detail is not None:
        assert response.status_code == 400 and detail in response.json()["detail"]


def long_names(count: int) -> list[str]:
    """``count`` distinct valid DNS names of 250 characters each."""
    return [f"{'a' * 63}.{'b' * 63}.{'c' * 63}.{f'n{i:03d}'.ljust(58, 'x')}" for i in range(count)]


def test_many_long_names_are_422_not_a_refused_batch(
    service: Service, admin: dict[str, str], authority: dict[str, object]
) -> None:
    body = {"authority_id": authority["id"], "common_name": "x", "dns_names": long_names(100)}
    response = service.client.post("/v1/certificates", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert "dns_names together" in response.text


def test_names_up_to_the_bound_are_stored(
    service: Service, admin: dict[str, str], authority: dict[str, object]
) -> None:
    names = long_names(MAX_DNS_NAMES_CHARS // 250)
    body = {"authority_id": authority["id"], "common_name": "x", "dns_names": names}
    response = service.client.post("/v1/certificates", json=body, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["dns_names"] == names


def test_validity_past_the_authority_is_400(service: Service, admin: dict[str, str]) -> None:
    short = service.client.post("/v1/authorities", json={"name": "Short", "validity_days": 10}, headers=admin).json()
    response = service.client.post(
        "/v1/certificates", json={"authority_id": short["id"], "common_name": "x", "validity_days": 30}, headers=admin
    )
    assert response.status_code == 400 and "outlast the authority" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/authorities/00000000-0000-0000-0000-000000000000",
        "/v1/certificates/00000000-0000-0000-0000-000000000000",
    ],
)
def test_unknown_ids_are_404(service: Service, admin: dict[str, str], path: str) -> None:
    response = service.client.get(path, headers=admin)
    assert response.status_code == 404 and "no " in response.json()["detail"]


def test_issue_for_unknown_authority_is_404(service: Service, admin: dict[str, str]) -> None:
    response = service.client.post(
        "/v1/certificates",
        json={"authority_id": "00000000-0000-0000-0000-000000000000", "common_name": "x"},
        headers=admin,
    )
    assert response.status_code == 404


def test_revoke_once_then_409(service: Service, admin: dict[str, str], authority: dict[str, object]) -> None:
    issued = service.client.post(
        "/v1/certificates", json={"authority_id": authority["id"], "common_name": "to-revoke"}, headers=admin
    ).json()
    revoked = service.client.post(
        f"/v1/certificates/{issued['id']}/revoke", json={"reason": "key_compromise"}, headers=admin
    )
    assert revoked.status_code == 200
    body = revoked.json()
    assert (body["status"], body["revocation_reason"], body["revoked_by"]) == ("revoked", "key_compromise", "admin")
    again = service.client.post(f"/v1/certificates/{issued['id']}/revoke", json={}, headers=admin)
    assert again.status_code == 409 and "already revoked" in again.json()["detail"]
    unknown = service.client.post(
        "/v1/certificates/00000000-0000-0000-0000-000000000000/revoke", json={}, headers=admin
    )
    assert unknown.status_code == 404


def test_list_filters_by_authority_and_expiry(service: Service, admin: dict[str, str]) -> None:
    own = service.client.post("/v1/authorities", json={"name": "Filter Root"}, headers=admin).json()
    soon = service.client.post(
        "/v1/certificates", json={"authority_id": own["id"], "common_name": "soon", "validity_days": 5}, headers=admin
    ).json()
    later = service.client.post(
        "/v1/certificates",
        json={"authority_id": own["id"], "common_name": "later", "validity_days": 200},
        headers=admin,
    ).json()

    def ids(**params: object) -> set[str]:
        response = service.client.get("/v1/certificates", params={"limit": 500, **params}, headers=admin)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert ids(authority_id=own["id"]) == {soon["id"], later["id"]}
    assert ids(authority_id=own["id"], expiring_within_days=10) == {soon["id"]}
    assert ids(authority_id=own["id"], expiring_within_days=365) == {soon["id"], later["id"]}
    assert soon["id"] in ids(expiring_within_days=10) and later["id"] not in ids(expiring_within_days=10)


def test_paging_walks_every_certificate_once(service: Service, admin: dict[str, str]) -> None:
    own = service.client.post("/v1/authorities", json={"name": "Paging Root"}, headers=admin).json()
    made = {
        service.client.post(
            "/v1/certificates", json={"authority_id": own["id"], "common_name": f"p{i}"}, headers=admin
        ).json()["id"]
        for i in range(5)
    }
    seen: list[str] = []
    token = None
    for _ in range(10):
        params = {"authority_id": own["id"], "limit": 2, **({"page_token": token} if token else {})}
        page = service.client.get("/v1/certificates", params=params, headers=admin).json()
        seen += [item["id"] for item in page["items"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert sorted(seen) == sorted(made)


@pytest.mark.parametrize(
    ("token", "status"),
    [("AAAA", 400), ("aGVsbG8gd29ybGQgdGhpcyBpcyBhIGxvbmdlciB0b2tlbg", 400), ("%%%", 422)],
)
def test_forged_page_token_is_refused_and_harmless(
    service: Service, admin: dict[str, str], token: str, status: int
) -> None:
    response = service.client.get("/v1/certificates", params={"page_token": token}, headers=admin)
    assert response.status_code == status
    assert service.client.get("/v1/certificates", headers=admin).status_code == 200


def test_audit_log_records_every_change(service: Service, admin: dict[str, str], session_secrets: Secrets) -> None:
    own = service.client.post("/v1/authorities", json={"name": "Audited Root"}, headers=admin).json()
    issued = service.client.post(
        "/v1/certificates", json={"authority_id": own["id"], "common_name": "audited"}, headers=admin
    ).json()
    service.client.post(f"/v1/certificates/{issued['id']}/revoke", json={"reason": "superseded"}, headers=admin)
    reader = bearer(session_secrets.reader_token)
    events = service.client.get("/v1/audit", params={"limit": 500}, headers=reader).json()["items"]
    mine = [(e["action"], e["target_id"]) for e in events if e["target_id"] in (own["id"], issued["id"])]
    assert mine == [
        ("certificate.revoke", issued["id"]),
        ("certificate.issue", issued["id"]),
        ("authority.create", own["id"]),
    ]
    assert all(e["actor"] == "admin" for e in events)
    assert datetime.fromisoformat(events[0]["at"]) > datetime.now(UTC) - timedelta(minutes=5)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert service.client.get("/v1/audit", params={"day": yesterday}, headers=reader).status_code == 200


def test_reader_can_read(service: Service, session_secrets: Secrets, authority: dict[str, object]) -> None:
    reader = bearer(session_secrets.reader_token)
    assert service.client.get(f"/v1/authorities/{authority['id']}", headers=reader).status_code == 200
    assert service.client.post("/v1/authorities", json={"name": "no"}, headers=reader).status_code == 403


def test_cassandra_query_latency_is_measured(service: Service, admin: dict[str, str]) -> None:
    service.client.get("/v1/authorities", headers=admin)
    text = service.client.get("/metrics").text
    assert 'csm_cassandra_query_duration_seconds_count{operation="authority_list",outcome="ok"}' in text
    assert 'csm_http_requests_total{method="GET",route="/v1/authorities",status="200"}' in text


def test_migrate_command_is_idempotent(keyspace: str, session_secrets: Secrets) -> None:
    env = {**service_env(session_secrets, keyspace), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "csm", "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"keyspace": keyspace, "applied": []}


def test_migrate_creates_a_new_keyspace(session_secrets: Secrets, cassandra: None) -> None:
    keyspace = f"csm_migrate_{datetime.now(UTC):%H%M%S%f}"
    env = {**service_env(session_secrets, keyspace), "PATH": "/usr/bin:/bin"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "csm", "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1])["applied"] == [1, 2]
    finally:
        cluster = admin_cluster()
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
        cluster.shutdown()


def in_progress(service: Service) -> float:
    for line in service.client.get("/metrics").text.splitlines():
        if line.startswith("csm_http_requests_in_progress "):
            return float(line.split()[1])
    raise AssertionError("no csm_http_requests_in_progress metric")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_finishes_in_flight_requests(
    keyspace: str, session_secrets: Secrets, admin: dict[str, str], tmp_path: Path, workers: str
) -> None:
    draining = Service(service_env(session_secrets, keyspace, CSM_WORKERS=workers), tmp_path / "csm.log")
    try:
        draining.wait_for("/health/ready", 200, timeout=60)
        outcomes: list[object] = []

        def create(index: int) -> None:
            body = {"name": f"Drain {index}", "key_algorithm": "rsa-3072"}
            try:
                with httpx.Client(base_url=draining.url, timeout=30) as client:
                    outcomes.append(client.post("/v1/authorities", json=body, headers=admin).status_code)
            except httpx.HTTPError as error:
                outcomes.append(repr(error))

        threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        # every request accepted (the -1: this scrape)
        until("the requests reaching the service", lambda: in_progress(draining) - 1 + len(outcomes) >= 4, 30, 0.05)
        draining.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=60)
        assert draining.process.wait(timeout=30) == 0
        assert outcomes == [201] * 4
    finally:
        draining.stop()
