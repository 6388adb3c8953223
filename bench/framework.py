"""What the service's own code costs per GET, in process: GET /v1/certificates/{id} through the whole
application (every middleware, routing, the token check, the service and repository, the response
model, the access-log line and the metrics) on a stubbed database, so that neither the network, the
server, the driver nor Cassandra is in the figure. Then the same requests under cProfile, split by layer: the profile behind the CPU per GET
that the API benchmark compares with the floor.

    python -m bench.framework   (in the venv of `make venv`; also a section of `make bench`)
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from harness.proc import run
from harness.service import make_secrets

REQUESTS, ROUNDS = 2500, 6
# label: (a fragment of the file's path, the function); disjoint parts of one request
LAYERS = {
    "dependency solving (the token check and the service)": ("fastapi/dependencies/utils.py", "solve_dependencies"),
    "routing (matching the path)": ("fastapi/routing.py", "_match"),
    "access-log line and request metrics": ("csm/api/observe.py", "record"),
    "the service and repository (the row into the model)": ("csm/service.py", "certificate"),
    "response model (validation and JSON)": ("fastapi/routing.py", "serialize_response"),
}
WHOLE = ("fastapi/applications.py", "__call__")


def application(directory: Path) -> tuple[Any, dict[str, Any]]:
    """The service's app on a stubbed database (its secrets in ``directory``), and the scope of an
    authorised GET of one certificate. The service and repository code run as deployed; the database
    answers every statement with the same row, as the driver returns it."""
    secrets = make_secrets(directory)
    (secrets.directory / "csm_cassandra_password").write_text("unused\n")
    from csm.app import certificate_service, create_app
    from csm.config import Settings
    from csm.logging import configure

    environment = {
        **secrets.env(),
        "CSM_CASSANDRA_CONTACT_POINTS": "127.0.0.1",
        "CSM_CASSANDRA_USERNAME": "unused",
        "CSM_CASSANDRA_KEYSPACE": "unused",
    }
    with mock.patch.dict(os.environ, environment):
        settings = Settings()
    configure(settings.log_level)
    now = datetime.now(UTC).replace(tzinfo=None)  # the driver's timestamps are naive UTC
    row = {
        "id": uuid.uuid4(),
        "authority_id": uuid.uuid4(),
        "kind": "node",
        "serial_number": "0a" * 16,
        "common_name": "node1.bench",
        "dns_names": ["node1.bench"],
        "ip_addresses": None,
        "key_algorithm": "ECDSA-P256",
        "not_before": now,
        "not_after": now + timedelta(days=30),
        "certificate_pem": "-----BEGIN CERTIFICATE-----\n" + "A" * 640 + "\n-----END CERTIFICATE-----\n",
        "created_at": now,
        "created_by": "admin",
        "revoked_at": None,
        "revoked_by": None,
        "revocation_reason": None,
    }

    class Rows:
        def one(self) -> dict[str, Any]:
            return row

    class Database:
        async def execute(self, operation: str, cql: str, params: Any = (), **_: Any) -> Rows:
            return Rows()

    service = certificate_service(settings, Database())  # type: ignore[arg-type]
    app = create_app(settings)
    app.state.service = service  # what the lifespan would build; it never runs (no Cassandra)
    path = f"/v1/certificates/{row['id']}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {secrets.reader_token}".encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    return app, scope


async def requests(app: Any, scope: dict[str, Any], count: int) -> float:
    """CPU seconds of ``count`` GETs; raises unless every one is a 200."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(count):
        await app({**scope, "state": {}}, receive, send)
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"the stubbed GET answered {sorted(set(statuses))}, not only 200")
    return spent


def measure(count: int = REQUESTS, rounds: int = ROUNDS) -> dict[str, Any]:
    """The figures, from a process of their own: the app's settings, logging and stdout stay there."""
    done = run(sys.executable, "-m", "bench.framework", "--json", str(count), str(rounds), timeout=600)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure_here(count: int, rounds: int) -> dict[str, Any]:
    import uvloop

    # the access log goes to stdout, as in the image; here it is thrown away
    real_stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115
    directory = Path(tempfile.mkdtemp(prefix="csm-framework-"))
    try:
        app, scope = application(directory)
        timed: Callable[[int], float] = lambda n: uvloop.run(requests(app, scope, n))  # noqa: E731
        timed(200)  # warm-up: the first requests build FastAPI's caches
        per_request = [timed(count) / count * 1e6 for _ in range(rounds)]
        profile = cProfile.Profile()
        profile.enable()
        timed(count)
        profile.disable()
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout
        shutil.rmtree(directory, ignore_errors=True)
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]

    def cumulative(fragment: str, function: str) -> float:
        return sum(v[3] for (file, _, name), v in stats.items() if fragment in file and name == function)

    whole = cumulative(*WHOLE)
    shares = {label: round(cumulative(*where) / whole * 100, 1) for label, where in LAYERS.items()}
    return {
        "requests": count,
        "rounds_us": [round(us) for us in per_request],
        "median_us": round(statistics.median(per_request)),
        "shares_pct": shares,
        "python": sys.version.split()[0],
    }


def report(data: dict[str, Any]) -> list[str]:
    rest = round(100 - sum(data["shares_pct"].values()), 1)
    return [
        "## The service's own code per GET, in process",
        "",
        f"`bench/framework.py`: GET a certificate through the whole application on a stubbed database (no network, "
        f"server, driver or Cassandra), {data['requests']} requests a round on Python {data['python']} (the venv): "
        f"**{data['median_us']} µs of CPU per GET**, median of {len(data['rounds_us'])} rounds "
        f"(rounds {data['rounds_us']} µs). Where it goes, from cProfile's cumulative times over the same requests "
        "(the profiler inflates small calls, so these are shares, not times):",
        "",
        "| layer | share |",
        "|---|---|",
        *(f"| {label} | {share:g} % |" for label, share in data["shares_pct"].items()),
        f"| the rest: the middleware stack (request id, body limit, errors), Starlette's request and response | "
        f"{rest:g} % |",
        "",
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--json"]:
        print(json.dumps(measure_here(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        print("\n".join(report(measure_here(REQUESTS, ROUNDS))))
