"""make bench: the CSM image against a python-slim-style baseline, measured side by side.

Builds both images from the same copy of app/ (bench/baseline.Dockerfile is the baseline) on
the local engine and measures, in one run:
  cold build (base image present, no layer cache, no cache mounts) and code-only rebuild time;
  image size, uncompressed (sum of the layer tars) and compressed (docker save | gzip -c);
  container start to ready (the host Cassandra of cassandra/run already up);
  idle memory and CPU after 60 s (the container's cgroup), both containers side by side;
  /health/live and /health/ready p50/p99 at a fixed 200 requests/s from vegeta (open loop, loopback),
  in rounds that alternate CSM and baseline so that both see the same noise of a shared machine;
  the API's throughput against a bare floor (bench/api.py); the real Pulumi engine's up, no-op
  preview and rolling update on the local Kubernetes stack (bench/engine.py).
Writes build/bench/report.md (+ results.json, logs/). A benchmark, not a test: it reports
pass/fail against the targets and the spec's floors and exits 0 unless it could not measure.

    python -m bench [--rate 200] [--duration 30] [--rounds 3] [--idle 60] [--starts 3] [--no-multiarch]
                    [--api-duration 15] [--no-api] [--previews 3] [--no-engine]
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from harness.envfile import read_env
from harness.net import free_port
from harness.poll import until
from harness.proc import run
from harness.service_secrets import NONROOT, seal, write_service_secrets
from reliability.load import percentile

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
CONTEXT = OUT / "context"
LOGS = OUT / "logs"
ENGINE_ENV = ROOT / ".local" / "engine.env"
CA_BUNDLE = Path(os.environ.get("CSM_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
KEYSPACE = "csm_bench"
# Dockerfiles as copied into the private context at the start (later edits don't leak into the run)
IMAGES = {"csm": CONTEXT / "Dockerfile", "baseline": CONTEXT / "baseline.Dockerfile"}
MB = 1_000_000

# The load generator, built from the Go module proxy into .local/tools on first use, with the
# machine's Go when it is 1.22 or later, else with this toolchain from the same proxy (sha256 of the
# zips as `go mod download` checked them against sum.golang.org).
TOOLS = ROOT / ".local" / "tools"
VEGETA_MODULE, VEGETA_VERSION = "github.com/tsenart/vegeta/v12", "v12.13.0"
VEGETA = TOOLS / f"vegeta-{VEGETA_VERSION}" / "vegeta"
GO_MIN = (1, 22)
GO_CANDIDATES = ("go", "/usr/local/go/bin/go", "/usr/lib/go/bin/go")
GO_TOOLCHAIN = "go1.26.11"
GO_TOOLCHAIN_SHA256 = {
    "amd64": "e1edb778de0aa08c8e827f5a873b35a46afe680fb241482c531725b2355e470d",
    "arm64": "51902dab7e130b07083119a36ce09e0cc50fdd9d0d64184c24bd302072ad8b70",
}
GO_PROXY = "https://proxy.golang.org"
WARMUP_S = 3

# metric key: (label, unit, target, spec floor); lower is better for all of them
TARGETS = {
    "cold_build_s": ("Cold build (no cache), native platform", "s", 180, 300),
    "rebuild_s": ("Code-only rebuild", "s", 20, 30),
    "size_mb": ("Image size, uncompressed", "MB", 75, 500),
    "size_gz_mb": ("Image size, compressed (docker save | gzip)", "MB", 25, None),
    "size_zstd_mb": (
        "Image size, compressed (the layers through zstd -19, as a push with compression=zstd)",
        "MB",
        None,
        None,
    ),
    "start_ready_s": ("Start to ready (Cassandra up), median", "s", 1.5, 5),
    "live_p50_ms": ("/health/live p50 at 200 req/s", "ms", None, None),
    "live_p99_ms": ("/health/live p99 at 200 req/s", "ms", 10, 100),
    "ready_p50_ms": ("/health/ready p50 at 200 req/s", "ms", None, None),
    "ready_p99_ms": ("/health/ready p99 at 200 req/s", "ms", 10, 100),
    "cpu_per_request_ms": ("Service CPU per /health/live request", "ms", 0.3, None),
    "healthcheck_cpu_s": ("CPU of one HEALTHCHECK run (the image's command, docker exec)", "s", 0.1, None),
    "idle_mem_mb": ("Idle memory after 60 s", "MB", 120, 512),
    "idle_cpu_pct": ("Idle CPU after 60 s (% of one core)", "%", 2, 50),
}


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def die(message: str) -> None:
    print(f"bench: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def sh(
    *args: str,
    log: str | None = None,
    timeout: float = 1800,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    result = run(*args, timeout=timeout, check=False, input=input)
    if log:
        (LOGS / log).write_text(f"$ {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    if check and result.returncode != 0:
        die(f"{' '.join(args[:4])} ... exited {result.returncode}\n{result.stderr[-3000:]!r}")
    return result


def http_status(url: str, timeout: float = 2) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return None


# ---------------------------------------------------------------- building


def prepare_context() -> None:
    """A private copy of the build context, so a code-only change never touches app/."""
    shutil.rmtree(CONTEXT, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    CONTEXT.mkdir(parents=True)
    for name in ("Dockerfile", ".dockerignore", "requirements.lock", "pyproject.toml"):
        shutil.copy2(ROOT / "app" / name, CONTEXT / name)
    shutil.copytree(ROOT / "app" / "src", CONTEXT / "src", ignore=ignore)
    shutil.copy2(ROOT / "bench" / "baseline.Dockerfile", CONTEXT / "baseline.Dockerfile")


def build(name: str, tag: str, base: str, platforms: str, *, cold: bool, log: str) -> float:
    if cold:  # no layer cache and no cache mounts (pip's download cache): only the base is present
        sh("docker", "builder", "prune", "--force", "--filter", "type=exec.cachemount", log=f"{log}.prune")
    args = [
        "docker",
        "buildx",
        "build",
        str(CONTEXT),
        "--file",
        str(IMAGES[name]),
        "--platform",
        platforms,
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        "VERSION=bench",
        "--provenance=false",
        "--sbom=false",
        "--progress=plain",
        "--tag",
        tag,
    ]
    if CA_BUNDLE.is_file():
        args += ["--secret", f"id=ca,src={CA_BUNDLE}"]
    if cold:
        args.append("--no-cache")
    if "," not in platforms:
        args.append("--load")
    started = time.monotonic()
    sh(*args, log=log)
    return round(time.monotonic() - started, 1)


def image_sizes(tag: str) -> tuple[float, float, float | None]:
    """(uncompressed MB: the layer tars as unpacked, compressed MB: docker save | gzip -c, and those layer
    tars through zstd -19 when the machine has zstd: what a push with compression=zstd would send)."""
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        saved, layers = Path(tmp) / "image.tar", Path(tmp) / "layers.tar"
        sh("docker", "image", "save", "--output", str(saved), tag)
        uncompressed = 0
        with tarfile.open(saved) as outer, layers.open("wb") as sink:
            index = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
            for layer in index[0]["Layers"]:
                blob = outer.extractfile(layer)
                assert blob is not None
                head = blob.read(2)
                blob.seek(0)
                stream = gzip.GzipFile(fileobj=blob) if head == b"\x1f\x8b" else blob
                while chunk := stream.read(1 << 20):
                    uncompressed += len(chunk)
                    sink.write(chunk)
        compressed = 0
        with saved.open("rb") as source, tempfile.TemporaryFile() as sink:
            with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6) as gz:
                while chunk := source.read(1 << 20):
                    gz.write(chunk)
            compressed = sink.tell()
        zstd = None
        if shutil.which("zstd"):
            packed = layers.with_suffix(".zst")
            sh("zstd", "-19", "-T0", "-q", "-f", "-o", str(packed), str(layers))
            zstd = packed.stat().st_size / MB
    return round(uncompressed / MB, 1), round(compressed / MB, 1), round(zstd, 1) if zstd else None


# ---------------------------------------------------------------- running


def make_secrets() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="csm-bench-"))
    write_service_secrets(directory, "bench")
    (directory / "csm_cassandra_password").write_text(
        os.environ.get("CSM_BENCH_CASSANDRA_PASSWORD", "cassandra") + "\n"
    )
    seal(directory, NONROOT)
    return directory


def start(tag: str, secrets_dir: Path, port: int, workers: int = 1) -> str:
    return sh(
        "docker",
        "run",
        "--detach",
        "--env",
        f"CSM_WORKERS={workers}",
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp:size=16m",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--label",
        "csm.bench=1",
        "--volume",
        f"{secrets_dir}:/run/secrets:ro",
        "--env",
        "CSM_HOST=127.0.0.1",
        "--env",
        f"CSM_PORT={port}",
        "--env",
        "CSM_CASSANDRA_CONTACT_POINTS=127.0.0.1",
        "--env",
        "CSM_CASSANDRA_USERNAME=cassandra",
        "--env",
        f"CSM_CASSANDRA_KEYSPACE={KEYSPACE}",
        tag,
    ).stdout.strip()


def remove(cid: str) -> None:
    sh("docker", "rm", "--force", cid, check=False)


def wait_ready(url: str, cid: str, timeout: float = 120) -> None:
    try:
        until(f"{url} answering 200", lambda: http_status(url) == 200, timeout, interval=0.02)
    except TimeoutError as error:
        logs = sh("docker", "logs", "--tail", "30", cid, check=False)
        die(f"{error}\n{logs.stderr[-3000:]}")


def start_to_ready(tag: str, secrets_dir: Path, runs: int) -> tuple[list[float], list[dict[str, float]]]:
    """Each run's seconds from `docker run` to 200 on /health/ready, and the phases the service logged."""
    times, phases = [], []
    for _ in range(runs):
        port = free_port()
        url = f"http://127.0.0.1:{port}/health/ready"
        started = time.monotonic()
        cid = start(tag, secrets_dir, port)
        try:
            wait_ready(url, cid)
            times.append(round(time.monotonic() - started, 2))
            phases.append(started_phases(sh("docker", "logs", cid).stdout))
        finally:
            remove(cid)
    return times, phases


def started_phases(log: str) -> dict[str, float]:
    """The phases of csm.startup's 'started' line, in seconds."""
    for line in log.splitlines():
        if '"message": "started"' in line:
            record = json.loads(line)
            return {k: v for k, v in record.items() if k.endswith("_s") and isinstance(v, int | float)}
    return {}


def healthcheck_cpu(cid: str, runs: int = 10) -> float:
    """CPU seconds of one run of the image's HEALTHCHECK command in the container, less the idle rate."""
    command = json.loads(sh("docker", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", cid).stdout)[1:]
    idle_before, t0 = cpu_seconds(cid), time.monotonic()
    time.sleep(5)
    idle_rate = (cpu_seconds(cid) - idle_before) / (time.monotonic() - t0)
    before, t1 = cpu_seconds(cid), time.monotonic()
    for _ in range(runs):
        sh("docker", "exec", cid, *command)
    spent = cpu_seconds(cid) - before - idle_rate * (time.monotonic() - t1)
    return round(spent / runs, 3)


def cgroup_dir(cid: str, controller: str) -> Path:
    for pattern in (
        f"/sys/fs/cgroup/{controller}/docker/{cid}",
        f"/sys/fs/cgroup/{controller}/**/*{cid}*",
        f"/sys/fs/cgroup/system.slice/docker-{cid}.scope",
        f"/sys/fs/cgroup/**/*{cid}*",
    ):
        found = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_dir()]
        if found:
            return found[0]
    die(f"no cgroup found for container {cid[:12]}")
    raise AssertionError


def cpu_seconds(cid: str) -> float:
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
    if v1.is_file():
        return int(v1.read_text()) / 1e9
    stat = dict(line.split() for line in (cgroup_dir(cid, "") / "cpu.stat").read_text().splitlines())
    return int(stat["usage_usec"]) / 1e6


def memory_mb(cid: str) -> float:
    """Usage minus inactive page cache, as `docker stats` counts it."""
    v1 = Path(f"/sys/fs/cgroup/memory/docker/{cid}")
    if v1.is_dir():
        usage = int((v1 / "memory.usage_in_bytes").read_text())
        stat = dict(line.split() for line in (v1 / "memory.stat").read_text().splitlines())
        return round((usage - int(stat.get("total_inactive_file", 0))) / MB, 1)
    directory = cgroup_dir(cid, "")
    stat = dict(line.split() for line in (directory / "memory.stat").read_text().splitlines())
    return round((int((directory / "memory.current").read_text()) - int(stat.get("inactive_file", 0))) / MB, 1)


def go_version(go: str) -> tuple[int, int] | None:
    try:
        found = subprocess.run(
            [go, "env", "GOVERSION"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "GOTOOLCHAIN": "local"},
        ).stdout
    except OSError:
        return None
    version = re.match(r"go(\d+)\.(\d+)", found)
    return (int(version[1]), int(version[2])) if version else None


def go_toolchain() -> str:
    """The machine's Go if recent enough, else the pinned toolchain unpacked into .local/tools."""
    for candidate in GO_CANDIDATES:
        go = shutil.which(candidate)
        if go and (go_version(go) or (0, 0)) >= GO_MIN:
            return go
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine()) or die(
        f"no Go pinned for {platform.machine()}"
    )
    home = TOOLS / f"{GO_TOOLCHAIN}.linux-{arch}"
    if (home / "bin" / "go").is_file():
        return str(home / "bin" / "go")
    prefix = f"golang.org/toolchain@v0.0.1-{GO_TOOLCHAIN}.linux-{arch}/"
    url = f"{GO_PROXY}/golang.org/toolchain/@v/v0.0.1-{GO_TOOLCHAIN}.linux-{arch}.zip"
    say(f"no Go {GO_MIN[0]}.{GO_MIN[1]} or later here: fetching {url}")
    TOOLS.mkdir(parents=True, exist_ok=True)
    context = ssl.create_default_context(cafile=str(CA_BUNDLE) if CA_BUNDLE.is_file() else None)
    with tempfile.TemporaryFile() as archive, tempfile.TemporaryDirectory(dir=TOOLS) as staging:
        with urllib.request.urlopen(url, timeout=600, context=context) as response:  # nosec B310 - a fixed https URL
            shutil.copyfileobj(response, archive)
        archive.seek(0)
        digest = hashlib.file_digest(archive, "sha256").hexdigest()  # type: ignore[arg-type]
        if digest != GO_TOOLCHAIN_SHA256[arch]:
            die(f"{url}: sha256 {digest}, expected {GO_TOOLCHAIN_SHA256[arch]}")
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                if not member.filename.startswith(prefix) or ".." in member.filename.split("/"):
                    die(f"{url}: unexpected member {member.filename}")
                target = Path(staging, "go", member.filename[len(prefix) :])
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
                target.chmod((member.external_attr >> 16) & 0o755 or 0o644)  # zip keeps the mode up there
        Path(staging, "go").rename(home)
    return str(home / "bin" / "go")


def install_vegeta() -> Path:
    if VEGETA.is_file():
        return VEGETA
    go = go_toolchain()
    say(f"installing vegeta {VEGETA_VERSION} into {VEGETA.parent} with {go}")
    VEGETA.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "GOBIN": str(VEGETA.parent), "GOTOOLCHAIN": "local"}
    result = subprocess.run(
        [go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=900,
    )
    if result.returncode != 0:
        die(f"go install {VEGETA_MODULE}@{VEGETA_VERSION} failed:\n{result.stderr[-3000:]}")
    return VEGETA


def attack(url: str, rate: float, seconds: float, output: Path) -> None:
    """GET `url` at a fixed `rate` (open loop)."""
    attack_targets(f"GET {url}\n", rate, seconds, output)


def attack_targets(targets: str, rate: float, seconds: float, output: Path) -> None:
    """Sends `targets` (vegeta's http format) at a fixed `rate`, open loop. vegeta runs at a higher CPU
    priority than the rest of the machine: a starved client would add its own delays to the latencies."""
    sh(
        "nice",
        "-n",
        "-10",
        str(VEGETA),
        "attack",
        f"-rate={rate:g}/s",
        f"-duration={seconds:g}s",
        "-timeout=5s",
        f"-output={output}",
        input=targets,
        timeout=seconds + 60,
    )


def seconds_of(stamp: str) -> float:
    """An RFC 3339 time with up to nanoseconds (as Go writes it) in seconds; the offset is ignored."""
    clock = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", stamp)
    if clock is None:
        die(f"vegeta wrote a timestamp this does not read: {stamp!r}")
        raise AssertionError
    return dt.datetime.fromisoformat(clock[1]).timestamp() + float(clock[2] or 0)


def latency_stats(raw: Path) -> dict:
    """Exact percentiles of every request's latency in a vegeta results file."""
    results = [json.loads(line) for line in sh(str(VEGETA), "encode", "--to", "json", str(raw)).stdout.splitlines()]
    latencies = sorted(r["latency"] / 1e6 for r in results if not r["error"])
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in results:
        if r["error"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
        else:
            statuses[str(r["code"])] = statuses.get(str(r["code"]), 0) + 1
    sent = sorted(seconds_of(r["timestamp"]) for r in results)
    span = sent[-1] - sent[0] if len(sent) > 1 else 0.0
    stat = {
        "requests": len(results),
        "completed": len(latencies),
        "statuses": statuses,
        "errors": errors,
        "sent_per_s": round((len(sent) - 1) / span, 1) if span else None,
    }
    for p in (50, 90, 99):
        stat[f"p{p}_ms"] = round(percentile(latencies, p / 100), 3) if latencies else None
    stat["max_ms"] = round(latencies[-1], 3) if latencies else None
    return stat


def measure(
    tags: dict[str, str],
    secrets_dir: Path,
    idle: float,
    rate: float,
    duration: float,
    rounds: int,
    window: float = 60.0,
) -> dict[str, dict]:
    """Both containers run side by side: idle figures over the same window, then latency rounds that
    alternate which image goes first."""
    ports = {name: free_port() for name in tags}
    cids: dict[str, str] = {}
    try:
        for name, tag in tags.items():
            cids[name] = sh(
                "docker", "inspect", "--format", "{{.Id}}", start(tag, secrets_dir, ports[name])
            ).stdout.strip()
        for name, cid in cids.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}/health/ready", cid)
        time.sleep(idle)
        # window: a whole number of HEALTHCHECK intervals (30 s), so it holds the same number of probes
        before, t0 = {name: cpu_seconds(cid) for name, cid in cids.items()}, time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        results: dict[str, dict] = {}
        for name, cid in cids.items():
            results[name] = {
                "idle_cpu_pct": round((cpu_seconds(cid) - before[name]) / elapsed * 100, 2),
                "idle_mem_mb": memory_mb(cid),
                "docker_stats": sh("docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", cid).stdout.strip(),
                "live": [],
                "ready": [],
                "live_cpu_s": 0.0,
            }
        for name, cid in cids.items():
            results[name]["healthcheck_cpu_s"] = healthcheck_cpu(cid)
        order = list(tags)
        for round_ in range(rounds):
            for endpoint in ("live", "ready"):
                for name in order if round_ % 2 == 0 else order[::-1]:
                    say(f"round {round_ + 1}/{rounds}: {name} /health/{endpoint} at {rate:g} req/s for {duration:g} s")
                    url, raw = (
                        f"http://127.0.0.1:{ports[name]}/health/{endpoint}",
                        LOGS / f"{name}-{endpoint}-{round_ + 1}.bin",
                    )
                    attack(url, rate, WARMUP_S, Path(os.devnull))
                    cpu_before = cpu_seconds(cids[name])
                    attack(url, rate, duration, raw)
                    stat = latency_stats(raw)
                    stat["load_average"] = round(os.getloadavg()[0], 1)
                    results[name][endpoint].append(stat)
                    if endpoint == "live":
                        results[name]["live_cpu_s"] += cpu_seconds(cids[name]) - cpu_before
    finally:
        for cid in cids.values():
            remove(cid)
    for data in results.values():
        answered = sum(stat["completed"] for stat in data["live"])
        data["cpu_per_request_ms"] = round(data.pop("live_cpu_s") / max(answered, 1) * 1000, 2)
    return results


# ---------------------------------------------------------------- report


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:g} {unit}" if unit != "%" else f"{value:g} %"


def verdict(value: float | None, limit: float | None) -> str:
    if limit is None or value is None:
        return ""
    return "pass" if value <= limit else "**FAIL**"


def verdict_min(value: float | None, minimum: float) -> str:
    return "pass" if value is not None and value >= minimum else "**FAIL**"


def report(results: dict) -> str:
    csm, base = results["csm"], results["baseline"]
    lines = [
        "# CSM image benchmark",
        "",
        f"Run {results['started']} on {results['host']['cpus']} CPUs, {results['host']['platform']}, "
        f"Docker {results['host']['docker']}; load average at start {results['host']['load_start']}, "
        f"at end {results['host']['load_end']}.",
        "",
        "- **CSM**: `app/Dockerfile` (distroless-style runtime assembled from Debian packages, FROM scratch).",
        "- **baseline**: `bench/baseline.Dockerfile` (the spec's example shape: python-slim-style single stage on "
        "the same Debian base, pip and build tools removed).",
        f"- Same service and locked dependencies; both run read-only as 65532 with host networking and the host "
        f"Cassandra (keyspace `{KEYSPACE}`); load: vegeta {VEGETA_VERSION}, fixed {results['rate']:g} req/s open loop "
        f"for {results['duration']:g} s per endpoint after {WARMUP_S} s of warm-up (client at nice -10), in "
        f"{results['rounds']} rounds that alternate which image goes first; p50 and p99 are the median of the "
        f"rounds' values, each round's are under Details.",
        "",
        "| metric | CSM | baseline | CSM / baseline | target | pass | spec floor | pass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, (label, unit, target, floor) in TARGETS.items():
        a, b = csm.get(key), base.get(key)
        ratio = f"{a / b:.2f}" if a is not None and b else "n/a"
        lines.append(
            f"| {label} | {fmt(a, unit)} | {fmt(b, unit)} | {ratio} | "
            f"{'≤ ' + fmt(target, unit) if target is not None else ''} | {verdict(a, target)} | "
            f"{'≤ ' + fmt(floor, unit) if floor is not None else ''} | {verdict(a, floor)} |"
        )
    if "multiarch_cold_build_s" in csm:
        lines += [
            "",
            f"Cold build of the CSM image for linux/amd64 + linux/arm64 in one run (arm64 under qemu): "
            f"{csm['multiarch_cold_build_s']:g} s.",
        ]
    busy = [
        f"{name} /health/{endpoint} round {number} ({stat['load_average']})"
        for name in ("csm", "baseline")
        for endpoint in ("live", "ready")
        for number, stat in enumerate(results[name].get(endpoint, []), 1)
        if stat["load_average"] >= results["host"]["cpus"]
    ]
    if busy:
        lines += [
            "",
            f"**Machine saturated**: {len(busy)} latency rounds ran with a 1-minute load average at or above "
            f"the {results['host']['cpus']} CPUs, so their tails are largely other work's time slices: "
            + "; ".join(busy)
            + ". Rerun on a quieter machine to measure the service.",
        ]
    if csm.get("start_phases"):
        lines += [
            "",
            "Start of the CSM image, median of the runs, from the service's `started` log line: "
            + ", ".join(f"{phase.removesuffix('_s')} {seconds:g} s" for phase, seconds in csm["start_phases"].items())
            + " (the rest of start to ready is `docker run` and the container's creation).",
        ]
    if results.get("problems"):
        lines += ["", "**Not measured** (n/a above): " + "; ".join(results["problems"]) + "."]
    if results.get("api"):
        from bench import api

        lines += ["", *api.report(results["api"])]
    if results.get("framework"):
        from bench import framework

        lines += ["", *framework.report(results["framework"])]
    if results.get("engine"):
        from bench import engine

        lines += ["", *engine.report(results["engine"])]
    lines += ["", "## Details", ""]
    for name, data in (("CSM", csm), ("baseline", base)):
        lines.append(
            f"- {name}: start-to-ready runs {data['start_ready_runs']} s; docker stats memory at idle "
            f"`{data['docker_stats']}`."
        )
        for endpoint in ("live", "ready"):
            for number, stat in enumerate(data[endpoint], 1):
                lines.append(f"  - /health/{endpoint}, round {number}: {summary(stat)}")
    lines += [
        "",
        "Notes: the cold build prunes BuildKit's cache mounts and passes `--no-cache` (the Debian base image stays); "
        "the code-only rebuild changes one line of `src/csm/__init__.py` in a private copy of the context. "
        "The service's CPU per request comes from its cgroup during the measured /health/live runs: it depends "
        "little on other work on the machine, while the latency percentiles do (with a load average near or above "
        "the 2 cores, the tail is other processes' time slices: see each round's load average). "
        "Idle CPU is the container cgroup's CPU time over 60 s after 60 s idle: the service's Cassandra check "
        "every 2 s and Docker's HEALTHCHECK probe (a Python process) every 30 s are included; idle memory is its cgroup usage minus inactive page cache (as `docker stats`). "
        "Other work on the machine at the same time shows up in every timing: see the load averages above.",
    ]
    return "\n".join(lines) + "\n"


def summary(stat: dict) -> str:
    return (
        f"{stat['completed']}/{stat['requests']} answered, sent at {stat['sent_per_s']} req/s, "
        f"statuses {stat['statuses']}, errors {stat['errors'] or 'none'}, "
        f"p50 {stat['p50_ms']} ms, p90 {stat['p90_ms']} ms, p99 {stat['p99_ms']} ms, max {stat['max_ms']} ms; "
        f"load average {stat['load_average']}"
    )


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--no-multiarch", action="store_true", help="skip the amd64+arm64 cold build")
    parser.add_argument("--api-duration", type=float, default=15.0, help="seconds per API rate")
    parser.add_argument("--no-api", action="store_true", help="skip the API throughput runs")
    parser.add_argument("--previews", type=int, default=3, help="no-op pulumi previews to time")
    parser.add_argument("--no-engine", action="store_true", help="skip the Pulumi engine timings")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    if os.geteuid() != 0:
        die("run as root (the secrets handed to the containers are owned by uid 65532)")
    if sh("docker", "info", check=False).returncode != 0:
        die("the Docker engine is not running: run 'make prereqs'")
    base = read_env(ENGINE_ENV).get("CSM_DEBIAN_BASE") or die(
        "no CSM_DEBIAN_BASE in .local/engine.env: run 'make prereqs'"
    )
    try:
        socket.create_connection(("127.0.0.1", 9042), timeout=3).close()
    except OSError as error:
        die(f"Cassandra is not answering on 127.0.0.1:9042 (cassandra/run start): {error}")

    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    native = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}[
        sh("docker", "info", "--format", "{{.Architecture}}").stdout.strip()
    ]
    results: dict = {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rate": args.rate,
        "duration": args.duration,
        "rounds": args.rounds,
        "host": {
            "cpus": os.cpu_count(),
            "platform": native,
            "docker": sh("docker", "version", "--format", "{{.Server.Version}}").stdout.strip(),
            "load_start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "kernel": platform.release(),
        },
        "csm": {},
        "baseline": {},
    }
    install_vegeta()
    prepare_context()
    tags = {name: f"csm-bench/{name}:bench" for name in IMAGES}
    for name in IMAGES:
        say(f"{name}: cold build ({native})")
        results[name]["cold_build_s"] = build(name, tags[name], base, native, cold=True, log=f"{name}-cold.log")
    init = CONTEXT / "src" / "csm" / "__init__.py"
    init.write_text(init.read_text() + f"# bench code-only change {time.time()}\n")
    for name in IMAGES:
        say(f"{name}: code-only rebuild")
        results[name]["rebuild_s"] = build(name, tags[name], base, native, cold=False, log=f"{name}-rebuild.log")
    for name in IMAGES:
        results[name]["size_mb"], results[name]["size_gz_mb"], results[name]["size_zstd_mb"] = image_sizes(tags[name])
        say(f"{name}: {results[name]['size_mb']} MB uncompressed, {results[name]['size_gz_mb']} MB compressed")

    problems: list[str] = []
    secrets_dir = make_secrets()
    try:
        start_to_ready(tags["csm"], secrets_dir, 1)  # creates the keyspace: later starts find it
        for name in IMAGES:
            say(f"{name}: start to ready x{args.starts}")
            runs, phases = start_to_ready(tags[name], secrets_dir, args.starts)
            results[name]["start_ready_runs"] = runs
            results[name]["start_ready_s"] = statistics.median(runs)
            results[name]["start_phases"] = (
                {phase: round(statistics.median(run.get(phase, 0.0) for run in phases), 3) for phase in phases[0]}
                if phases and phases[0]
                else {}
            )
        say(f"both: {args.idle:g} s idle, idle figures over 60 s, then {args.rounds} latency rounds")
        for name, data in measure(tags, secrets_dir, args.idle, args.rate, args.duration, args.rounds).items():
            results[name].update(data)
            for endpoint in ("live", "ready"):
                stats = data[endpoint]
                invalid = [stat for stat in stats if stat["statuses"] != {"200": stat["requests"]} or stat["errors"]]
                for stat in invalid:  # e.g. Cassandra went away mid-run: these are not the endpoint's latencies
                    problems.append(f"{name} /health/{endpoint}: statuses {stat['statuses']}, errors {stat['errors']}")
                valid = not invalid
                results[name][f"{endpoint}_p50_ms"] = statistics.median(s["p50_ms"] for s in stats) if valid else None
                results[name][f"{endpoint}_p99_ms"] = statistics.median(s["p99_ms"] for s in stats) if valid else None
        if not args.no_api:
            from bench import api

            say("csm: API throughput and the floor")
            results["api"] = {**api.measure(tags["csm"], secrets_dir, args.api_duration), "seconds": args.api_duration}
            from bench import framework

            say("csm: the service's own code per GET, in process")
            results["framework"] = framework.measure()
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)

    if not args.no_multiarch:
        say("csm: cold build for linux/amd64,linux/arm64")
        results["csm"]["multiarch_cold_build_s"] = build(
            "csm", "csm-bench/csm:multiarch", base, "linux/amd64,linux/arm64", cold=True, log="csm-multiarch-cold.log"
        )

    if not args.no_engine:
        from bench import engine

        results["engine"] = engine.measure(args.previews)

    results["host"]["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results["problems"] = problems
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "report.md").write_text(report(results))
    say(f"wrote {OUT / 'report.md'}")
    print((OUT / "report.md").read_text())
    if problems:
        say("some runs did not measure what they should (n/a in the report): " + "; ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
