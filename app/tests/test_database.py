"""The Cassandra connection's configuration, without a Cassandra: TLS context and replication."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csm import ca
from csm.config import load_settings
from csm.store import Database
from csm.store.migrations import MIGRATIONS, replication
from harness.service import Secrets


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, str]:
    now = datetime.now(UTC)
    root_key = ca.generate_key("ecdsa-p256")
    root = ca.create_authority("Cassandra CA", root_key, timedelta(days=30), now)
    client_key = ca.generate_key("ecdsa-p256")
    client = ca.issue(root, root_key, client_key.public_key(), ca.Subject("csm"), "client", timedelta(days=1), now)
    files = {"ca": root, "cert": client}
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for name, certificate in files.items():
        paths[name].write_text(ca.certificate_pem(certificate))
    paths["key"].write_text(ca.private_key_pem(client_key))
    return {name: str(path) for name, path in paths.items()}


def test_no_tls_without_a_ca(secrets_dir: Secrets) -> None:
    assert Database(load_settings()).ssl_context() is None


def test_mutual_tls_context(secrets_dir: Secrets, tls_files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSM_CASSANDRA_TLS_CA_FILE", tls_files["ca"])
    monkeypatch.setenv("CSM_CASSANDRA_TLS_CERT_FILE", tls_files["cert"])
    monkeypatch.setenv("CSM_CASSANDRA_TLS_KEY_FILE", tls_files["key"])
    monkeypatch.setenv("CSM_CASSANDRA_TLS_VERIFY_HOSTNAME", "false")
    context = Database(load_settings()).ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "Cassandra CA"),),)]


def test_replication_options() -> None:
    assert replication("SimpleStrategy", 1) == "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    assert replication("NetworkTopologyStrategy", 3) == "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}"


def test_migration_versions_increase_from_1() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert all("IF NOT EXISTS" in statement for m in MIGRATIONS for statement in m.statements)
