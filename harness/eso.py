"""The External Secrets Operator's CRDs for the chart version the EKS stack installs, from its Go
module on the Go module proxy (the zip's sha256 as `go mod download` checked it against
sum.golang.org), cached under build/. Under CI=true an unreachable proxy fails; elsewhere it skips."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from components.eks.external_secrets import CHART_VERSION as VERSION

MODULE_SHA256 = {"0.18.2": "327efc225474753e0df63fceba6ec59b62929980b0a23f06e6b2c1fccf3b4faa"}
CRDS = {"ExternalSecret": "externalsecrets", "SecretStore": "secretstores"}
CACHE = Path(__file__).resolve().parents[1] / "build" / "cache"


def module_zip() -> bytes:
    assert VERSION in MODULE_SHA256, f"pin the sha256 of the external-secrets v{VERSION} module zip here"
    cached = CACHE / f"external-secrets-v{VERSION}.zip"
    data = cached.read_bytes() if cached.is_file() else b""
    if hashlib.sha256(data).hexdigest() == MODULE_SHA256[VERSION]:
        return data
    url = f"https://proxy.golang.org/github.com/external-secrets/external-secrets/@v/v{VERSION}.zip"
    try:
        with urllib.request.urlopen(url, timeout=120) as response:  # nosec B310 - a fixed https URL
            data = response.read()
    except OSError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{url} is required under CI=true: {error}")
        pytest.skip(f"{url}: {error}")
    digest = hashlib.sha256(data).hexdigest()
    assert digest == MODULE_SHA256[VERSION], f"{url}: sha256 {digest}, expected {MODULE_SHA256[VERSION]}"
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return data


@functools.cache
def crds() -> dict[str, dict]:
    """kind -> the operator's CustomResourceDefinition."""
    prefix = f"github.com/external-secrets/external-secrets@v{VERSION}/config/crds/bases/external-secrets.io_"
    with zipfile.ZipFile(io.BytesIO(module_zip())) as module:
        return {kind: yaml.safe_load(module.read(f"{prefix}{plural}.yaml")) for kind, plural in CRDS.items()}
