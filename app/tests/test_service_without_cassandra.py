"""The real service process with Cassandra unreachable from the start: it keeps running, is live but
not ready, and answers every bad request (tokens, bodies, ids) with a 4xx JSON error."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.service import Secrets, Service, bearer, free_port, make_secrets


@pytest.fixture(scope="module")
def module_secrets(tmp_path_factory: pytest.TempPathFactory) -> Secrets:
    return make_secrets(tmp_path_factory.mktemp("nocassandra") / "secrets")


@pytest.fixture(scope="module")
def offline(module_secrets: Secrets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    env = {
        **module_secrets.env(),
        "CSM_CASSANDRA_PORT": str(free_port()),  # nothing listens there
        "CSM_READINESS_INTERVAL": "0.2",
        "CSM_MAX_REQUEST_BYTES": "2048",
        "CSM_BUILD_VERSION": "9.8.7",
        "CSM_BUILD_COMMIT": "abc1234",
        "CSM_BUILD_DATE": "2030-01-02T03:04:05Z",
    }
    service = Service(env, tmp_path_factory.mktemp("nocassandra-log") / "csm.log")
    try:
        service.wait_for("/health/live", 200, timeout=30)
        yield service
    finally:
        service.stop()


def assert_json_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "detail" in body and "Traceback" not in response.text
    return body


def test_live_while_cassandra_is_unreachable(offline: Service) -> None:
    assert offline.client.get("/health/live").json() == {"status": "ok"}


def test_not_ready_with_the_reason(offline: Service) -> None:
    response = offline.wait_for("/health/ready", 503, timeout=10)
    body = response.json()
    assert body["status"] == "not_ready"
    assert "Cassandra" in body["reason"] and body["checked_at"]


def test_health_lists_each_check(offline: Service) -> None:
    response = offline.client.get("/health")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["process"]["status"] == "ok"
    assert checks["cassandra"]["status"] == "failing" and checks["cassandra"]["detail"]
    assert isinstance(checks["cassandra"]["latency_ms"], float)


def test_info_names_the_build_and_redacts_secrets(offline: Service, module_secrets: Secrets) -> None:
    response = offline.client.get("/info")
    assert response.status_code == 200
    info = response.json()
    assert (info["name"], info["version"], info["git_commit"], info["build_date"]) == (
        "cassandra-security-manager",
        "9.8.7",
        "abc1234",
        "2030-01-02T03:04:05Z",
    )
    assert info["python_version"].startswith("3.") and info["architecture"]
    assert info["uptime_seconds"] > 0
    assert info["config"]["max_request_bytes"] == 2048
    assert info["config"]["master_key"] == "**********" and info["config"]["api_tokens"] == "**********"
    for secret in (module_secrets.master_key, module_secrets.admin_token):
        assert secret not in response.text


def test_metrics(offline: Service) -> None:
    offline.client.get("/health/live")
    text = offline.client.get("/metrics").text
    assert "csm_ready 0.0" in text
    assert 'csm_build_info{build_date="2030-01-02T03:04:05Z",git_commit="abc1234",version="9.8.7"} 1.0' in text
    assert 'csm_http_requests_total{method="GET",route="/health/live",status="200"}' in text
    assert 'csm_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health/live",status="200"}' in text
    assert "csm_cassandra_query_duration_seconds" in text


def test_unknown_paths_are_counted_under_one_label(offline: Service) -> None:
    assert_json_error(offline.client.get("/no/such/path/123"), 404)
    assert 'route="unmatched",status="404"' in offline.client.get("/metrics").text


def test_openapi_schema(offline: Service) -> None:
    schema = offline.client.get("/openapi.json").json()
    assert {
        "/v1/authorities",
        "/v1/certificates",
        "/v1/certificates/{certificate_id}/revoke",
        "/v1/audit",
        "/health",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/info",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from the tokens secret",
    }
    unguarded = [
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if path.startswith("/v1/") and operation.get("security") != [{"HTTPBearer": []}]
    ]
    assert not unguarded, f"operations without the bearer scheme in OpenAPI: {unguarded}"


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "missing bearer token"),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401, "missing bearer token"),
        (bearer("x" * 64), 401, "invalid bearer token"),
        ({"Authorization": "Bearer"}, 401, "missing bearer token"),
    ],
)
def test_wrong_or_missing_token(offline: Service, headers: dict[str, str], status: int, detail: str) -> None:
    response = offline.client.get("/v1/authorities", headers=headers)
    assert assert_json_error(response, status)["detail"] == detail
    assert response.headers["www-authenticate"] == "Bearer"


def test_read_token_cannot_write(offline: Service, module_secrets: Secrets) -> None:
    response = offline.client.post("/v1/authorities", json={"name": "x"}, headers=bearer(module_secrets.reader_token))
    assert assert_json_error(response, 403)["detail"] == "the token lacks the 'write' scope"


def test_write_only_token_cannot_read(offline: Service, module_secrets: Secrets) -> None:
    response = offline.client.get("/v1/certificates", headers=bearer(module_secrets.writer_token))
    assert_json_error(response, 403)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/authorities", b"{not json"),
        ("POST", "/v1/authorities", b"\xff\xfe not UTF-8"),
        ("POST", "/v1/certificates", b"\xff\xfe not UTF-8"),
        ("POST", "/v1/certificates/00000000-0000-0000-0000-000000000000/revoke", b"{not json"),
        ("POST", "/v1/certificates/00000000-0000-0000-0000-000000000000/revoke", b"\xff\xfe not UTF-8"),
        ("POST", "/v1/authorities", b'{"name": "x", "unexpected": 1}'),
        ("POST", "/v1/authorities", b'{"name": ""}'),
        ("POST", "/v1/authorities", b'{"name": "x", "key_algorithm": "dsa-1024"}'),
        ("POST", "/v1/authorities", b'{"name": "x", "validity_days": 0}'),
        ("POST", "/v1/authorities", b"[]"),
        ("POST", "/v1/authorities", b'{"name": "\\ud800"}'),
        ("POST", "/v1/authorities", b'{"\\ud800": 1, "name": "x"}'),
        ("POST", "/v1/authorities", b'{"name": "x", "validity_days": 1e400}'),
        ("POST", "/v1/certificates", b'{"authority_id": "not-a-uuid"}'),
        (
            "POST",
            "/v1/certificates",
            b'{"authority_id": "00000000-0000-0000-0000-000000000000", "dns_names": ["bad host!"]}',
        ),
        (
            "POST",
            "/v1/certificates",
            b'{"authority_id": "00000000-0000-0000-0000-000000000000", "ip_addresses": ["999.1.1.1"]}',
        ),
        ("POST", "/v1/certificates", b'{"authority_id": "00000000-0000-0000-0000-000000000000", "kind": "admin"}'),
        ("POST", "/v1/certificates/not-a-uuid/revoke", b"{}"),
        ("GET", "/v1/certificates?page_token=not%20a%20token", None),
        ("POST", "/v1/certificates/00000000-0000-0000-0000-000000000000/revoke", b'{"reason": "bored"}'),
        ("GET", "/v1/certificates/not-a-uuid", None),
        ("GET", "/v1/authorities/12345", None),
        ("GET", "/v1/certificates?limit=0", None),
        ("GET", "/v1/certificates?limit=100000", None),
        ("GET", "/v1/certificates?expiring_within_days=-1", None),
        ("GET", "/v1/certificates?authority_id=nope", None),
        ("GET", "/v1/audit?day=yesterday", None),
    ],
)
def test_malformed_requests_are_422(
    offline: Service, module_secrets: Secrets, method: str, path: str, body: bytes | None
) -> None:
    headers = {**bearer(module_secrets.admin_token), "Content-Type": "application/json"}
    response = offline.client.request(method, path, content=body, headers=headers)
    errors = assert_json_error(response, 422)["detail"]
    assert isinstance(errors, list) and errors
    assert all(set(error) == {"type", "loc", "msg"} for error in errors)  # the input is never echoed


def test_oversized_body_is_413(offline: Service, module_secrets: Secrets) -> None:
    body = json.dumps({"name": "x", "padding": "y" * 4096})
    response = offline.client.post(
        "/v1/authorities",
        content=body,
        headers={**bearer(module_secrets.admin_token), "Content-Type": "application/json"},
    )
    assert_json_error(response, 413)


def test_oversized_chunked_body_is_413(offline: Service, module_secrets: Secrets) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "x", "padding": "'
        for _ in range(10):
            yield b"y" * 512
        yield b'"}'

    response = offline.client.post(
        "/v1/authorities",
        content=chunks(),
        headers={**bearer(module_secrets.admin_token), "Content-Type": "application/json"},
    )
    assert_json_error(response, 413)


def test_store_use_while_unreachable_is_503_json(offline: Service, module_secrets: Secrets) -> None:
    response = offline.client.post("/v1/authorities", json={"name": "x"}, headers=bearer(module_secrets.admin_token))
    assert "not connected" in str(assert_json_error(response, 503)["detail"])
    assert response.headers["retry-after"]


def test_request_id_is_returned_and_logged(offline: Service) -> None:
    response = offline.client.get("/info", headers={"X-Request-ID": "0f8fad5b-d9cb-469f-a165-70867728950e"})
    assert response.headers["x-request-id"] == "0f8fad5b-d9cb-469f-a165-70867728950e"
    generated = offline.client.get("/info").headers["x-request-id"]
    assert len(generated) == 32
    time.sleep(0.2)
    records = offline.log_records()
    access = [r for r in records if r.get("logger") == "csm.access" and r.get("route") == "/info"]
    assert {r["request_id"] for r in access} >= {"0f8fad5b-d9cb-469f-a165-70867728950e", generated}
    assert all({"time", "level", "message"} <= set(r) for r in records)


def test_no_secret_in_the_log(offline: Service, module_secrets: Secrets) -> None:
    offline.client.get("/v1/authorities", headers=bearer(module_secrets.admin_token))
    offline.client.get("/v1/authorities", headers=bearer("y" * 48))
    log = offline.log()
    for secret in (module_secrets.master_key, module_secrets.admin_token, module_secrets.reader_token, "y" * 48):
        assert secret not in log


def test_healthcheck_command(offline: Service) -> None:
    run = [sys.executable, "-m", "csm", "healthcheck", "--timeout", "10"]  # generous: CI machines can be busy
    assert subprocess.run([*run, "--port", str(offline.port)], timeout=60, check=False).returncode == 0
    assert subprocess.run([*run, "--port", str(free_port())], timeout=60, check=False).returncode == 1
    from_config = subprocess.run(run, env=offline.env, timeout=60, check=False)
    assert from_config.returncode == 0


def _probe_file(env: dict[str, str]) -> Path:
    code = "from csm.probe import probe_file; print(probe_file(None, None))"
    return Path(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip())


def test_serve_leaves_its_live_url_for_the_healthcheck_of_the_same_environment(offline: Service) -> None:
    probe = _probe_file(offline.env)
    assert probe.read_text() == f"http://127.0.0.1:{offline.port}/health/live"
    other = _probe_file({**offline.env, "CSM_PORT": str(offline.port + 1)})
    assert other != probe, "a service started with other settings must not share the file"


def test_healthcheck_reads_the_servers_url_instead_of_the_settings(offline: Service, tmp_path: Path) -> None:
    # No master key or tokens: loading the settings would fail, so exit 0 proves the file was used.
    env = {"PATH": offline.env.get("PATH", ""), "CSM_SECRETS_DIR": str(tmp_path), "CSM_PROBE_TEST": "1"}
    probe = _probe_file(env)
    run = [sys.executable, "-m", "csm", "healthcheck", "--timeout", "10"]
    assert subprocess.run(run, env=env, capture_output=True, timeout=60, check=False).returncode == 1
    try:
        probe.write_text(f"http://127.0.0.1:{offline.port}/health/live")
        assert subprocess.run(run, env=env, capture_output=True, timeout=60, check=False).returncode == 0
        probe.write_text(f"http://127.0.0.1:{free_port()}/health/live")
        assert subprocess.run(run, env=env, capture_output=True, timeout=60, check=False).returncode == 1
    finally:
        probe.unlink(missing_ok=True)


def test_the_images_healthcheck_reads_the_file_without_the_cli(offline: Service, tmp_path: Path) -> None:
    # `csm healthcheck` without flags (the Dockerfile's HEALTHCHECK): the file and one GET. Neither argparse nor the
    # settings are loaded: the settings here are invalid, and -X importtime shows no argparse.
    env = {"PATH": offline.env.get("PATH", ""), "CSM_SECRETS_DIR": str(tmp_path), "CSM_PROBE_TEST": "2"}
    probe = _probe_file(env)
    run = [sys.executable, "-X", "importtime", "-m", "csm", "healthcheck"]
    try:
        probe.write_text(f"http://127.0.0.1:{offline.port}/health/live")
        done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
        assert "csm.probe" in imported and not {"argparse", "csm.cli", "csm.config"} & imported
        probe.write_text(f"http://127.0.0.1:{free_port()}/health/live")
        assert subprocess.run(run, env=env, capture_output=True, timeout=60, check=False).returncode == 1
    finally:
        probe.unlink(missing_ok=True)
    # no file: the full CLI loads the settings, which are invalid here
    assert subprocess.run(run, env=env, capture_output=True, timeout=60, check=False).returncode == 1


def test_probes_answer_json_and_other_methods_still_reach_the_router(offline: Service) -> None:
    live = offline.client.get("/health/live")
    assert (live.status_code, live.headers["content-type"], live.json()) == (200, "application/json", {"status": "ok"})
    ready = offline.client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready" and ready.json()["reason"]
    assert offline.client.post("/health/live").status_code == 405


def test_sigterm_exits_0(module_secrets: Secrets, tmp_path: Path) -> None:
    env = {**module_secrets.env(), "CSM_CASSANDRA_PORT": str(free_port()), "CSM_SHUTDOWN_TIMEOUT": "5"}
    service = Service(env, tmp_path / "csm.log")
    service.wait_for("/health/live", 200, timeout=30)
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=30) == 0
    service.stop()
    messages = [r["message"] for r in service.log_records()]
    assert "Application shutdown complete." in messages
