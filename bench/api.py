"""The API's own throughput (GET a certificate, issue one) and the service's CPU per GET against a
bare ASGI floor (bench/floor.py) doing the same prepared read, in the same image, on the same machine.

Open-loop vegeta runs at fixed, rising rates; a rate holds when every request succeeds and the p99 is
within the target. Each run reports the service's CPU per request (its container's cgroup) and
Cassandra's (the host node's process), separately."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench import benchmark as b

FLOOR = Path(__file__).with_name("floor.py")
CASSANDRA_PID = b.ROOT / ".local" / "cassandra" / "cassandra.pid"
GET_RATES = (100, 200, 300, 400, 600, 800, 1000, 1200)
ISSUE_RATES = (25, 50, 75, 100, 150, 200, 300)
GET_P99_MS, ISSUE_P99_MS = 20.0, 50.0
WORKERS = 2  # the ramps run with one worker and with this many (one per core of this machine)
CPU_RATE = 500  # the fixed rate at which the service and the floor are compared: above the rates where
# both are dominated by the fixed cost of waking up for each request
PROBE_RATES = (200, 1000)  # /health/live: the health benchmark's rate, and one where wake-ups are shared
PROBE_CPU_MS = 0.3


def token(secrets_dir: Path) -> str:
    return (secrets_dir / "csm_api_tokens").read_text().strip().rsplit(":", 1)[1]


def cassandra_cpu_s() -> float:
    """CPU seconds of the host Cassandra (every JVM thread), from its /proc stat."""
    pid = CASSANDRA_PID.read_text().strip()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request(url: str, bearer: str, body: dict | None = None) -> dict:
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=10) as response:  # nosec B310 - loopback http
        return json.loads(response.read())


def start_floor(tag: str, secrets_dir: Path, port: int) -> str:
    return b.sh(
        "docker", "run", "--detach", "--network", "host", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--label", "csm.bench=1",
        "--volume", f"{secrets_dir}:/run/secrets:ro", "--volume", f"{FLOOR}:/bench/floor.py:ro",
        "--env", f"CSM_PORT={port}", "--env", "CSM_CASSANDRA_CONTACT_POINTS=127.0.0.1",
        "--env", "CSM_CASSANDRA_USERNAME=cassandra", "--env", f"CSM_CASSANDRA_KEYSPACE={b.KEYSPACE}",
        "--entrypoint", "/opt/venv/bin/python", tag, "/bench/floor.py",
    ).stdout.strip()  # fmt: skip


def run_rate(cid: str, targets: str, rate: float, seconds: float, raw: Path) -> dict:
    """One fixed-rate run of `targets` (vegeta's format), with the CPU each side spent on it."""
    b.attack_targets(targets, rate, b.WARMUP_S, Path(os.devnull))
    service, cassandra = b.cpu_seconds(cid), cassandra_cpu_s()
    b.attack_targets(targets, rate, seconds, raw)
    service, cassandra = b.cpu_seconds(cid) - service, cassandra_cpu_s() - cassandra
    stat = b.latency_stats(raw)
    stat["rate"] = rate
    stat["load_average"] = round(os.getloadavg()[0], 1)
    answered = max(stat["completed"], 1)
    stat["service_cpu_ms"] = round(service / answered * 1000, 3)
    stat["cassandra_cpu_ms"] = round(cassandra / answered * 1000, 3)
    return stat


def probe_runs(cid: str, base: str, seconds: float, name: str) -> dict[int, dict]:
    """GET /health/live at each of PROBE_RATES: what one probe costs the process."""
    runs = {}
    for rate in PROBE_RATES:
        b.say(f"api: {name} /health/live at {rate} req/s")
        runs[rate] = run_rate(cid, f"GET {base}/health/live\n", rate, seconds, b.LOGS / f"api-live-{name}-{rate}.bin")
    return runs


def holds(stat: dict, p99_ms: float, ok: str) -> bool:
    return not stat["errors"] and stat["statuses"] == {ok: stat["requests"]} and (stat["p99_ms"] or 1e9) <= p99_ms


def ramp(cid: str, targets: str, rates: tuple[int, ...], seconds: float, p99_ms: float, ok: str, name: str) -> dict:
    """Rising rates until one does not hold (and one more, to show it was not noise); the highest held.
    First one unmeasured run at the lowest rate: the service's first seconds of a read (and Cassandra's
    JIT and caches) are not what the rate can hold."""
    b.say(f"api: {name} warm-up at {rates[0]} req/s for {seconds:g} s")
    b.attack_targets(targets, rates[0], seconds, Path(os.devnull))
    runs, best, misses = [], None, 0
    for rate in rates:
        b.say(f"api: {name} at {rate} req/s for {seconds:g} s")
        stat = run_rate(cid, targets, rate, seconds, b.LOGS / f"api-{name}-{rate}.bin")
        stat["holds"] = holds(stat, p99_ms, ok)
        runs.append(stat)
        if stat["holds"]:
            best, misses = rate, 0
        else:
            misses += 1
            if misses == 2:
                break
        time.sleep(2)
    return {"runs": runs, "max_rps": best}


def measure(tag: str, secrets_dir: Path, seconds: float) -> dict:
    """The ramps of one worker and of WORKERS, one after the other on the same data; the CPU per GET
    of one worker against the floor (both one process)."""
    bearer = token(secrets_dir)
    auth = f"Authorization: Bearer {bearer}"
    floor_port = b.free_port()
    cids: list[str] = []
    results: dict = {"workers": {}}
    certificate = ""
    try:
        for workers in (1, WORKERS):
            port = b.free_port()
            service = b.start(tag, secrets_dir, port, workers=workers)
            cids.append(service)
            base = f"http://127.0.0.1:{port}"
            b.wait_ready(f"{base}/health/ready", service)
            if not certificate:
                authority = request(f"{base}/v1/authorities", bearer, {"name": "bench-ca"})["id"]
                certificate = request(
                    f"{base}/v1/certificates", bearer,
                    {"authority_id": authority, "common_name": "node1.bench", "dns_names": ["node1.bench"]},
                )["id"]  # fmt: skip
                body = b.OUT / "issue.json"
                body.write_text(json.dumps({"authority_id": authority, "common_name": "node2.bench"}))
            get = f"GET {base}/v1/certificates/{certificate}\n{auth}\n"
            issue = f"POST {base}/v1/certificates\n{auth}\nContent-Type: application/json\n@{body}\n"
            results["workers"][workers] = {
                "get": ramp(service, get, GET_RATES, seconds, GET_P99_MS, "200", f"get-w{workers}"),
                "issue": ramp(service, issue, ISSUE_RATES, seconds, ISSUE_P99_MS, "201", f"issue-w{workers}"),
            }
            if workers == 1:
                b.say(f"api: service GET at {CPU_RATE} req/s")
                results["service_at_cpu_rate"] = run_rate(
                    service, get, CPU_RATE, seconds, b.LOGS / "api-get-service.bin"
                )
                results["probe"] = {"service": probe_runs(service, base, seconds, "service")}
            b.remove(service)
            cids.remove(service)
        floor = start_floor(tag, secrets_dir, floor_port)
        cids.append(floor)
        b.wait_ready(f"http://127.0.0.1:{floor_port}/v1/certificates/{certificate}", floor)
        b.say(f"api: floor GET at {CPU_RATE} req/s")
        floor_get = f"GET http://127.0.0.1:{floor_port}/v1/certificates/{certificate}\n"
        results["floor_at_cpu_rate"] = run_rate(floor, floor_get, CPU_RATE, seconds, b.LOGS / "api-get-floor.bin")
        results["floor"] = ramp(floor, floor_get, GET_RATES, seconds, GET_P99_MS, "200", "floor-get")
        results["probe"]["floor"] = probe_runs(floor, f"http://127.0.0.1:{floor_port}", seconds, "floor")
    finally:
        for cid in cids:
            b.remove(cid)
    service_cpu = results["service_at_cpu_rate"]["service_cpu_ms"]
    floor_cpu = results["floor_at_cpu_rate"]["service_cpu_ms"]
    results["get_cpu_ratio"] = round(service_cpu / floor_cpu, 2) if floor_cpu else None
    return results


def best(api: dict, kind: str) -> int | None:
    """The highest rate any worker count held."""
    return max((w[kind]["max_rps"] or 0 for w in api["workers"].values()), default=0) or None


def report(api: dict) -> list[str]:
    service, floor = api["service_at_cpu_rate"], api["floor_at_cpu_rate"]
    ratio = api["get_cpu_ratio"]
    workers = {int(n): w for n, w in api["workers"].items()}
    one, many = workers[1], workers[WORKERS]

    def rate(variant: dict, kind: str) -> str:
        return f"{variant[kind]['max_rps']} req/s" if variant[kind]["max_rps"] else "none"

    def gain(kind: str) -> str:
        low, high = one[kind]["max_rps"], many[kind]["max_rps"]
        return f"{high / low:.2f}" if low and high else "n/a"

    lines = [
        "## API",
        "",
        f"Open loop, fixed rates for {api['seconds']:g} s each after {b.WARMUP_S} s of warm-up; a rate holds with "
        "0 errors, only the expected status and the p99 within the target. Cassandra is the host node beside "
        "the service on the same 2 cores. The floor is `bench/floor.py` (bare ASGI, same driver, same read).",
        "",
        f"| metric | CSM, 1 worker | CSM, {WORKERS} workers | floor | {WORKERS} workers / 1 | target | pass |",
        "|---|---|---|---|---|---|---|",
        f"| GET a certificate: highest rate holding p99 ≤ {GET_P99_MS:g} ms | {rate(one, 'get')} | {rate(many, 'get')} "
        f"| {api['floor']['max_rps'] or 'none'} req/s | {gain('get')} | ≥ 1000 req/s "
        f"| {b.verdict_min(best(api, 'get'), 1000)} |",
        f"| issue a certificate (ECDSA P-256, key made by the service): highest rate holding p99 ≤ {ISSUE_P99_MS:g} ms "
        f"| {rate(one, 'issue')} | {rate(many, 'issue')} | | {gain('issue')} | ≥ 200 req/s "
        f"| {b.verdict_min(best(api, 'issue'), 200)} |",
        f"| service CPU per GET at {CPU_RATE} req/s (1 worker; CSM / floor in the ratio column) "
        f"| {service['service_cpu_ms']:g} ms | | {floor['service_cpu_ms']:g} ms "
        f"| {ratio if ratio is not None else 'n/a'} | ≤ 1.5 times the floor | {b.verdict(ratio, 1.5)} |",
        f"| Cassandra CPU per GET at {CPU_RATE} req/s | {service['cassandra_cpu_ms']:g} ms | | "
        f"{floor['cassandra_cpu_ms']:g} ms | | | |",
        "",
        *probe_report(api["probe"]),
    ]
    runs = [
        (f"{kind}, CSM, {n} worker{'s' if n > 1 else ''}", w[kind])
        for n, w in workers.items()
        for kind in ("get", "issue")
    ]
    for name, data in [*runs, ("GET, floor", api["floor"])]:
        for stat in data["runs"]:
            lines.append(
                f"- {name} at {stat['rate']} req/s: {'holds' if stat['holds'] else 'does not hold'}; "
                f"{b.summary(stat)}; CPU per request: service {stat['service_cpu_ms']} ms, "
                f"Cassandra {stat['cassandra_cpu_ms']} ms"
            )
    return lines


def probe_report(probe: dict) -> list[str]:
    """CPU per /health/live of the service (1 worker) beside the floor's constant answer, per rate."""
    lines = [
        "CPU per `/health/live` request, the service (1 worker) beside the floor answering the same path with a "
        "constant (the server alone):",
        "",
        "| rate | CSM | floor | CSM / floor | target | pass |",
        "|---|---|---|---|---|---|",
    ]
    service_runs, floor_runs = (
        {int(rate): stat for rate, stat in probe[side].items()} for side in ("service", "floor")
    )
    for rate in PROBE_RATES:
        service, floor = service_runs[rate], floor_runs[rate]
        ms, floor_ms = service["service_cpu_ms"], floor["service_cpu_ms"]
        answered = not service["errors"] and service["statuses"] == {"200": service["requests"]}
        lines.append(
            f"| {rate} req/s | {ms:g} ms | {floor_ms:g} ms | {ms / floor_ms:.2f} | ≤ {PROBE_CPU_MS:g} ms "
            f"| {b.verdict(ms, PROBE_CPU_MS) if answered else '**FAIL** (errors)'} |"
        )
    return [*lines, ""]
