"""The real Pulumi engine on the local stack (Pulumi.local.yaml: target kubernetes on the cluster of
`localengine/csm-local kube up`), timed: `pulumi up` from nothing, a no-op `pulumi preview`, and a
rolling update of the 2 replicas under a steady GET of a certificate.

Each operation's wall time is split into the program's own share (the `program:` line that
localengine/engine.py prints: importing, validating the config and declaring every resource) and the
rest (the engine, the docker-build and kubernetes providers, the image build and the rollout)."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import time

from bench import api
from bench import benchmark as b

HARNESS = b.ROOT / "localengine" / "csm-local"
STACK = "local"
NAMESPACE = "csm"
NOOP_PREVIEW_S, ROLLING_S = 15.0, 60.0
ROLLING_RATE = 50
PUSHED_MB = 25.0  # the compressed-size target, met by what the registry stores
PROGRAM = re.compile(r"^program: ran in ([\d.]+) s \(([\d.]+) s CPU\)$", re.MULTILINE)


def pulumi(*args: str, log: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return b.sh(str(HARNESS), "pulumi", "--stack", STACK, *args, log=log, timeout=timeout)


def timed(*args: str, log: str) -> dict:
    """One engine operation: its wall time and the program's share of it."""
    started = time.perf_counter()
    done = pulumi(*args, log=log)
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 2), **program_share(done.stdout, wall)}


def program_share(stdout: str, wall: float) -> dict:
    ran = PROGRAM.findall(stdout)
    if not ran:
        b.die("localengine/engine.py printed no 'program: ran in' line: the program's share is unknown")
    program = sum(float(seconds) for seconds, _ in ran)
    return {
        "program_s": round(program, 2),
        "program_cpu_s": round(sum(float(cpu) for _, cpu in ran), 2),
        "engine_s": round(wall - program, 2),
    }


def pushed_image(ref: str) -> dict:
    """What the registry stores of the deployed image (one platform): compressed MB and layer media types."""
    import urllib.request

    name, digest = ref.split("@", 1)
    registry, repository = name.split("/", 1)
    accept = ", ".join(
        f"application/vnd.{kind}"
        for kind in (
            "oci.image.index.v1+json",
            "oci.image.manifest.v1+json",
            "docker.distribution.manifest.list.v2+json",
            "docker.distribution.manifest.v2+json",
        )
    )

    def manifest(reference: str) -> dict:
        url = f"http://{registry}/v2/{repository}/manifests/{reference}"
        request = urllib.request.Request(url, headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310 - the local registry
            return json.loads(response.read())

    found = manifest(digest)
    if "manifests" in found:  # an index: the first image manifest (one platform here)
        found = manifest(next(m["digest"] for m in found["manifests"] if m.get("platform", {}).get("os") != "unknown"))
    layers = found["layers"]
    return {
        "compressed_mb": round((sum(layer["size"] for layer in layers) + found["config"]["size"]) / b.MB, 1),
        "layer_media_types": sorted({layer["mediaType"] for layer in layers}),
    }


def kubectl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return b.sh(str(HARNESS), "kube", "kubectl", *args, timeout=timeout)


def rolling_update(outputs: dict, bearer: str) -> dict:
    """`pulumi up` of a new image version while vegeta GETs a certificate through the Service."""
    base = outputs["serviceUrl"]
    authority = api.request(f"{base}/v1/authorities", bearer, {"name": "bench-engine-ca"})["id"]
    certificate = api.request(
        f"{base}/v1/certificates", bearer, {"authority_id": authority, "common_name": "rolling.bench"}
    )["id"]
    targets = f"GET {base}/v1/certificates/{certificate}\nAuthorization: Bearer {bearer}\n"
    images_before = deployment_images()
    pulumi("config", "set", "imageVersion", f"0.0.0-bench-{int(time.time())}", log="engine-config.log")
    raw = b.LOGS / "engine-rolling.bin"
    load = subprocess.Popen(
        [str(b.VEGETA), "attack", f"-rate={ROLLING_RATE}/s", "-duration=900s", "-timeout=5s", f"-output={raw}"],
        stdin=subprocess.PIPE,
        text=True,
    )
    assert load.stdin is not None
    load.stdin.write(targets)
    load.stdin.close()
    try:
        time.sleep(3)
        update = timed("up", "--yes", log="engine-rolling-up.log")
        time.sleep(3)
    finally:
        load.send_signal(signal.SIGINT)  # vegeta stops sending, waits for what is in flight, and writes
        load.wait(timeout=60)
    images_after = deployment_images()
    if images_after == images_before:
        b.die(f"the rolling update changed no pod's image ({images_before})")
    stat = b.latency_stats(raw)
    stat["rate"] = ROLLING_RATE
    stat["load_average"] = round(os.getloadavg()[0], 1)
    return {**update, "load": stat, "failed": stat["requests"] - stat["statuses"].get("200", 0)}


def deployment_images() -> set[str]:
    pods = json.loads(kubectl("get", "pods", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    return {c["image"] for p in pods if "deletionTimestamp" not in p["metadata"] for c in p["spec"]["containers"]}


def measure(previews: int) -> dict:
    b.say("engine: the local Kubernetes cluster")
    b.sh(str(HARNESS), "kube", "up", log="engine-kube-up.log", timeout=1800)
    # From nothing: no state of an earlier run and no namespace it left behind.
    pulumi("stack", "rm", "--force", "--yes", log="engine-stack-rm.log")
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    try:
        b.say("engine: pulumi up of the local stack from nothing")
        results: dict = {"up": timed("up", "--yes", log="engine-up.log")}
        runs = []
        for number in range(1, previews + 1):
            b.say(f"engine: no-op pulumi preview {number}/{previews}")
            runs.append(timed("preview", "--expect-no-changes", log=f"engine-preview-{number}.log"))
        results["preview_runs"] = runs
        results["preview"] = {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
        outputs = json.loads(pulumi("stack", "output", "--json", log="engine-outputs.log").stdout)
        results["pushed"] = pushed_image(outputs["imageRef"])
        bearer = pulumi("config", "get", "apiTokens", log="engine-token.log").stdout.strip().rsplit(":", 1)[1]
        b.say(f"engine: rolling update under {ROLLING_RATE} GET/s")
        results["rolling"] = rolling_update(outputs, bearer)
    finally:
        b.say("engine: pulumi destroy")
        pulumi("destroy", "--yes", log="engine-destroy.log")
        pulumi("stack", "rm", "--yes", log="engine-stack-rm-end.log")  # and the imageVersion set above
    return results


def report(engine: dict) -> list[str]:
    up, preview, rolling = engine["up"], engine["preview"], engine["rolling"]
    load = rolling["load"]

    def row(label: str, op: dict, target: str, verdict: str) -> str:
        return (
            f"| {label} | {op['wall_s']:g} s | {op['program_s']:g} s ({op['program_cpu_s']:g} s CPU) "
            f"| {op['engine_s']:g} s | {target} | {verdict} |"
        )

    return [
        "## Pulumi engine (local stack, Kubernetes)",
        "",
        "The real CLI and providers of `localengine/toolchain` on the local cluster (`Pulumi.local.yaml`). "
        "*program* is the program's own share (imports, stack config, declaring every resource), "
        "*engine and providers* the rest of the wall time (planning, the image build, the Kubernetes API, the rollout).",
        "",
        "| operation | wall | program | engine and providers | target | pass |",
        "|---|---|---|---|---|---|",
        row("`pulumi up` from nothing", up, "", ""),
        row(
            f"no-op `pulumi preview --expect-no-changes`, median of {len(engine['preview_runs'])}",
            preview,
            f"≤ {NOOP_PREVIEW_S:g} s",
            b.verdict(preview["wall_s"], NOOP_PREVIEW_S),
        ),
        row(
            f"rolling update of 2 replicas (new image) under {ROLLING_RATE} GET/s",
            rolling,
            f"≤ {ROLLING_S:g} s, 0 failed",
            "pass" if rolling["wall_s"] <= ROLLING_S and rolling["failed"] == 0 else "**FAIL**",
        ),
        "",
        f"- Load during the rolling update: {b.summary(load)}; failed (not 200): {rolling['failed']}.",
        f"- The image as pushed by `pulumi up` (`csm:imageCompression` of the local stack): "
        f"{engine['pushed']['compressed_mb']:g} MB compressed (target ≤ {PUSHED_MB:g} MB: "
        f"{b.verdict(engine['pushed']['compressed_mb'], PUSHED_MB)}), layers {', '.join(engine['pushed']['layer_media_types'])}.",
        "- Previews: "
        + "; ".join(f"{r['wall_s']:g} s (program {r['program_s']:g} s)" for r in engine["preview_runs"])
        + ".",
    ]


def main() -> int:
    """`python -m bench.engine`: these timings alone, into build/bench/engine.md (+ engine.json)."""
    b.LOGS.mkdir(parents=True, exist_ok=True)
    b.install_vegeta()
    results = measure(3)
    (b.OUT / "engine.json").write_text(json.dumps(results, indent=2) + "\n")
    (b.OUT / "engine.md").write_text("\n".join(report(results)) + "\n")
    print((b.OUT / "engine.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
