"""Prometheus metrics of the process (served at /metrics)."""

import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]

HTTP_REQUESTS = Counter(
    "csm_http_requests_total", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
HTTP_REQUEST_SECONDS = Histogram(
    "csm_http_request_duration_seconds",
    "HTTP request latency by method, route template and status",
    ["method", "route", "status"],
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "csm_http_requests_in_progress", "HTTP requests being served", multiprocess_mode="livesum"
)
CASSANDRA_QUERY_SECONDS = Histogram(
    "csm_cassandra_query_duration_seconds",
    "Cassandra statement latency by operation and outcome",
    ["operation", "outcome"],
)
CASSANDRA_RECONNECTS = Counter(
    "csm_cassandra_reconnects_total",
    "New Cassandra sessions built because the current one stayed unusable, by outcome (ok or error)",
    ["outcome"],
)
for _outcome in ("ok", "error"):  # exposed as 0 before the first reconnect
    CASSANDRA_RECONNECTS.labels(outcome=_outcome)
READY = Gauge("csm_ready", "1 when Cassandra is usable and the service ready, else 0", multiprocess_mode="livemin")
# A gauge of 1 rather than an Info, which prometheus-client's multiprocess mode does not collect.
BUILD = Gauge(
    "csm_build_info",
    "Version, git commit and build date of the running service",
    ["build_date", "git_commit", "version"],
    multiprocess_mode="max",
)
BATCHLOG_FALLBACKS = Counter(
    "csm_cassandra_batchlog_fallbacks_total",
    "Logged batches whose batch log could not be written (a node down but not yet convicted), sent unlogged",
)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def exposition() -> bytes:
    """The text exposition: this process's metrics, or with several workers (PROMETHEUS_MULTIPROC_DIR)
    every worker's, summed from their files; a dead worker's live gauges (in progress, ready) are dropped."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest()
    for name in os.listdir(directory):
        match = _LIVE_GAUGE_FILE.fullmatch(name)
        if match and not _alive(int(match[1])):
            multiprocess.mark_process_dead(int(match[1]), directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)
    return generate_latest(registry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        pass
    return True
