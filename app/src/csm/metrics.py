"""Prometheus metrics of the process (served at /metrics)."""

from prometheus_client import Counter, Gauge, Histogram, Info

HTTP_REQUESTS = Counter(
    "csm_http_requests_total", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
HTTP_REQUEST_SECONDS = Histogram(
    "csm_http_request_duration_seconds",
    "HTTP request latency by method, route template and status",
    ["method", "route", "status"],
)
HTTP_REQUESTS_IN_PROGRESS = Gauge("csm_http_requests_in_progress", "HTTP requests being served")
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
READY = Gauge("csm_ready", "1 when Cassandra is usable and the service ready, else 0")
BUILD = Info("csm_build", "Version, git commit and build date of the running service")
BATCHLOG_FALLBACKS = Counter(
    "csm_cassandra_batchlog_fallbacks_total",
    "Logged batches whose batch log could not be written (a node down but not yet convicted), sent unlogged",
)
