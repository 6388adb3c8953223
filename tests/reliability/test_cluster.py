"""The three-node Cassandra 5.0 cases (reliability/cluster.py) under pytest: RF 3, LOCAL_QUORUM, steady
issue-and-read load; kill -9 of one node, its return, a rolling restart, two nodes down. The nodes
run on the host JDK (127.0.0.51-53) beside the host Cassandra; the report goes to
build/reliability/cluster-report.md. Under CI=true a cluster that cannot start fails, never skips."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reliability import cluster as C
from reliability.report import write

pytestmark = pytest.mark.cassandra


def test_three_node_cluster(tmp_path: Path) -> None:
    started = time.time()
    results = []
    try:
        for result in C.run_all(tmp_path / "csm"):
            results.append(result)
    except C.Unavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(str(error))
        pytest.skip(str(error))
    finally:
        write(results, C.BUILD / "cluster-report.md", "cluster", started)
    for result in results:
        print(f"{result.title}: sent {result.sent}, failed {result.failed}, figures {result.figures}")
    assert [r.case for r in results] == ["cluster-kill9", "cluster-catch-up", "cluster-rolling", "cluster-two-down"]
    failing = {r.case: r.failures() for r in results if not r.passed}
    assert not failing, failing
