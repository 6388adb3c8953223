"""A Cassandra outage: stop it under a running service, then start it again."""

from __future__ import annotations

import time

import pytest

from harness.service import CASSANDRA, Secrets, Service, bearer, cassandra_listening, run_cassandra

pytestmark = [pytest.mark.cassandra, pytest.mark.outage]


def test_outage_and_recovery(service: Service, session_secrets: Secrets) -> None:
    admin = bearer(session_secrets.admin_token)
    authority = service.client.post("/v1/authorities", json={"name": "Outage Root"}, headers=admin).json()
    issued = service.client.post(
        "/v1/certificates", json={"authority_id": authority["id"], "common_name": "survivor"}, headers=admin
    ).json()

    stopped = run_cassandra("stop")
    try:
        assert stopped.returncode == 0, stopped.stderr
        assert not cassandra_listening(), (
            f"something other than cassandra/run's node serves {CASSANDRA[0]}:{CASSANDRA[1]}"
        )
        not_ready = service.wait_for("/health/ready", 503, timeout=30).json()
        assert not_ready["status"] == "not_ready" and "Cassandra" in not_ready["reason"]
        assert service.client.get("/health/live").status_code == 200
        during = service.client.get(f"/v1/certificates/{issued['id']}", headers=admin)
        assert during.status_code == 503 and during.json()["detail"]
        assert service.process.poll() is None
    finally:
        started = run_cassandra("start")
    assert started.returncode == 0, started.stderr

    back = time.monotonic()
    service.wait_for("/health/ready", 200, timeout=30)
    print(f"ready again {time.monotonic() - back:.1f} s after Cassandra accepted logins")
    after = service.client.get(f"/v1/certificates/{issued['id']}", headers=admin)
    assert after.status_code == 200
    assert after.json()["certificate_pem"] == issued["certificate_pem"]
    assert service.client.get(f"/v1/authorities/{authority['id']}", headers=admin).json() == authority
