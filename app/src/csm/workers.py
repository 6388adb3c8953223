"""Several worker processes behind one listening socket (``CSM_WORKERS``), on uvicorn's own supervisor.

One process runs its event loop and the Cassandra driver's I/O thread under one GIL, so it saturates
about one core. With ``workers > 1`` the parent binds the socket, then uvicorn's ``Multiprocess``
spawns the workers, restarts one that dies, and on SIGTERM or SIGINT has each drain its requests
(``shutdown_timeout``) before the parent exits 0. Each worker builds its settings from the same
command-line flags, connects to Cassandra, and keeps its own readiness.

Metrics use prometheus-client's multiprocess mode: each worker writes its samples to files in a fresh
directory (``PROMETHEUS_MULTIPROC_DIR``, under the temporary directory), and ``/metrics`` sums them,
so counters and histograms count every worker's requests whichever worker answers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from csm.config import Settings

FLAGS_VARIABLE = "CSM_SERVE_FLAGS"  # the parent's command-line flags, for the workers' settings
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
MAX_AUTO = 8  # an automatic count never exceeds this: each worker holds its own Cassandra connections
CGROUP = Path("/sys/fs/cgroup")

log = logging.getLogger(__name__)


def cpu_limit(cgroup: Path = CGROUP) -> float | None:
    """The container's CPU limit in CPUs (cgroup v2 ``cpu.max``, else v1 CFS quota); None without one."""
    try:
        v2_quota, v2_period = (cgroup / "cpu.max").read_text().split()
        return None if v2_quota == "max" else int(v2_quota) / int(v2_period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 else quota / period


def count(configured: int, cgroup: Path = CGROUP) -> int:
    """``configured`` when set (1 or more); 0 means one per whole CPU of the container's limit, at most
    the CPUs this process may run on and ``MAX_AUTO``, and 1 without a limit (no CPU budget declared)."""
    if configured > 0:
        return configured
    limit = cpu_limit(cgroup)
    if limit is None:
        return 1
    return max(1, min(math.floor(limit), len(os.sched_getaffinity(0)), MAX_AUTO))


def metrics_directory() -> str | None:
    """A fresh directory for the workers' metric files (no samples of an earlier run), or None when the
    temporary directory is not writable."""
    try:
        return tempfile.mkdtemp(prefix="csm-metrics-")
    except OSError:
        return None


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options, the same in one process and in each worker."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "timeout_keep_alive": settings.keep_alive_timeout,
    }


def serve(settings: Settings, flags: dict[str, Any], workers: int) -> bool:
    """Runs ``workers`` worker processes until SIGTERM/SIGINT. False (nothing started) when the metric
    files have nowhere to go: the caller then serves in this process."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    directory = metrics_directory()
    if directory is None:
        log.warning("no writable temporary directory for the workers' metrics: serving in one process")
        return False
    os.environ[METRICS_VARIABLE] = directory
    os.environ[FLAGS_VARIABLE] = json.dumps(flags, default=str)  # paths as strings
    config = uvicorn.Config("csm.workers:worker_app", factory=True, workers=workers, **server_options(settings))
    log.info("serving with %d worker processes", workers, extra={"workers": workers})
    Multiprocess(config, sockets=[config.bind_socket()]).run()
    return True


def worker_app() -> FastAPI:
    """The application of one worker process (uvicorn's factory, called in the worker)."""
    from csm.app import create_app
    from csm.config import load_settings
    from csm.logging import configure
    from csm.startup import Startup

    startup = Startup()
    settings = load_settings(**json.loads(os.environ[FLAGS_VARIABLE]))
    startup.phase("settings_s")
    configure(settings.log_level)
    app = create_app(settings, startup)
    startup.phase("imports_s")
    return app
