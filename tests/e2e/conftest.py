"""Fixtures shared by the e2e tests: the local Kubernetes cluster (harness.kube.py)."""

from __future__ import annotations

from harness.kube import kube_cluster  # noqa: F401  (the session fixture, for every e2e module)


def pytest_collection_modifyitems(items):
    """Tests marked with harness.kube.run_last (the `kube down` leftover check) go last."""
    items.sort(key=lambda item: bool(getattr(getattr(item, "function", None), "run_last", False)))
