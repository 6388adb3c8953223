"""Checks for Compose files and Swarm stack files, which checkov has no framework for.

The rules mirror what the policy pack enforces for ECS and Kubernetes (policy/csm_policies.py),
so the local stack and the Swarm target are held to the same bar:

  CSM_C01 not privileged                    CSM_C07 no Docker socket / host system bind mounts
  CSM_C02 read_only: true                   CSM_C08 healthcheck defined and enabled (one-shot jobs exempt)
  CSM_C03 explicit non-root user            CSM_C09 no secret-looking environment variables
  CSM_C04 cap_drop: [ALL]                   CSM_C10 memory limit set
  CSM_C05 no-new-privileges (Compose only;  CSM_C11 published ports bound to 127.0.0.1 (local Compose only)
          docker stack deploy ignores it)   CSM_C12 image referenced by digest (Swarm stack files only)
  CSM_C06 no host network/pid/ipc namespace

A justified exception sits inside the service's block: `# csm-scan:skip=CSM_C02 <reason>`.
Only PyYAML and the standard library are used, so this runs in the scan venv and the dev venv.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

RULES: dict[str, str] = {
    "CSM_C01": "service is not privileged",
    "CSM_C02": "root filesystem is read-only (read_only: true)",
    "CSM_C03": "runs as an explicit non-root user (user: <uid>[:<gid>])",
    "CSM_C04": "drops all capabilities (cap_drop: [ALL])",
    "CSM_C05": "sets security_opt no-new-privileges:true",
    "CSM_C06": "shares no host namespace (network_mode/pid/ipc: host)",
    "CSM_C07": "mounts neither the Docker socket nor host system paths",
    "CSM_C08": "has an enabled healthcheck",
    "CSM_C09": "has no secret-looking environment variable (use secrets: and *_FILE)",
    "CSM_C10": "has a memory limit",
    "CSM_C11": "publishes ports on 127.0.0.1 only",
    "CSM_C12": "references its image by digest",
}
LOCAL_ONLY = {"CSM_C11"}
COMPOSE_ONLY = {"CSM_C05"}
SWARM_ONLY = {"CSM_C12"}

SKIP_RE = re.compile(r"#\s*csm-scan:skip=(?P<ids>CSM_C\d{2}(?:\s*,\s*CSM_C\d{2})*)(?P<reason>.*)$")
DIGEST_RE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
HOST_SYSTEM_PATHS = {"/", "/etc", "/proc", "/sys", "/boot", "/dev", "/root", "/var/lib/docker", "/var/run", "/run"}
# Same rule as policy/csm_policies.secret_looking (tests/unit/test_scan_rules.py keeps them in step).
SECRET_TOKENS = {
    "PASSWORD",
    "PASSWD",
    "PWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "PASSPHRASE",
    "PRIVATE",
}
REFERENCE_SUFFIXES = {"FILE", "PATH", "DIR", "ARN", "NAME", "ID", "REF"}


def secret_looking(name: str) -> bool:
    tokens = [t for t in re.split(r"[^A-Z0-9]+", name.upper()) if t]
    if not tokens or tokens[-1] in REFERENCE_SUFFIXES:
        return False
    return any(t in SECRET_TOKENS or t.endswith(("PASSWORD", "SECRET", "TOKEN", "APIKEY")) for t in tokens)


@dataclass(frozen=True)
class Result:
    file: str
    service: str
    rule: str
    line: int
    ok: bool
    message: str = ""
    suppressed_reason: str | None = None


class ComposeError(ValueError):
    pass


def _service_lines(text: str) -> dict[str, tuple[int, int]]:
    """Line span (1-based, inclusive) of each service's block, from the YAML node marks."""
    root = yaml.compose(text)
    spans: dict[str, tuple[int, int]] = {}
    if not isinstance(root, yaml.MappingNode):
        return spans
    for key, value in root.value:
        if key.value == "services" and isinstance(value, yaml.MappingNode):
            for skey, sval in value.value:
                spans[str(skey.value)] = (skey.start_mark.line + 1, sval.end_mark.line + 1)
    return spans


def _suppressions(lines: list[str], span: tuple[int, int]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines[span[0] - 1 : span[1]]:
        m = SKIP_RE.search(line)
        if m:
            reason = m.group("reason").strip(" :-#\t")
            for rule in re.split(r"\s*,\s*", m.group("ids")):
                found[rule] = reason
    return found


def _env_names(env: Any) -> list[str]:
    if isinstance(env, dict):
        return [str(k) for k in env]
    if isinstance(env, list):
        return [str(e).split("=", 1)[0] for e in env]
    return []


def _bind_sources(volumes: Any) -> list[str]:
    sources = []
    for v in volumes or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2 and (parts[0].startswith(("/", ".", "~"))):
                sources.append(parts[0])
        elif isinstance(v, dict) and v.get("type") == "bind":
            sources.append(str(v.get("source", "")))
    return sources


def _published_ports_not_loopback(ports: Any) -> list[str]:
    bad = []
    for p in ports or []:
        if isinstance(p, dict):
            if p.get("published") is not None and p.get("host_ip") not in ("127.0.0.1", "::1"):
                bad.append(f"{p.get('published')}->{p.get('target')}")
        else:
            spec = str(p).split("/", 1)[0]
            if not (spec.startswith("127.0.0.1:") or spec.startswith("[::1]:")):
                bad.append(str(p))
    return bad


def _check(rule: str, svc: dict, swarm: bool) -> str | None:
    """The failure message for one rule on one service, or None when it passes."""
    if rule == "CSM_C01":
        return "privileged: true" if svc.get("privileged") is True else None
    if rule == "CSM_C02":
        return None if svc.get("read_only") is True else "read_only is not true"
    if rule == "CSM_C03":
        user = svc.get("user")
        if user is None or str(user).strip() == "":
            return "no user: set; the image's user is not visible here"
        return f"user {user!r} is root" if str(user).split(":")[0] in ("0", "root") else None
    if rule == "CSM_C04":
        drop = [str(c).upper() for c in svc.get("cap_drop") or []]
        return None if "ALL" in drop else "cap_drop does not contain ALL"
    if rule == "CSM_C05":
        opts = [str(o).replace("=", ":").replace(" ", "") for o in svc.get("security_opt") or []]
        return None if "no-new-privileges:true" in opts else "security_opt lacks no-new-privileges:true"
    if rule == "CSM_C06":
        shared = [k for k in ("network_mode", "pid", "ipc") if str(svc.get(k, "")) == "host"]
        return f"shares the host's {', '.join(shared)}" if shared else None
    if rule == "CSM_C07":
        bad = [
            s
            for s in _bind_sources(svc.get("volumes"))
            if "docker.sock" in s or s.rstrip("/") in HOST_SYSTEM_PATHS or s == "/"
        ]
        return f"bind-mounts {', '.join(bad)}" if bad else None
    if rule == "CSM_C08":
        restart = str(svc.get("restart", "")).lower()
        condition = str(((svc.get("deploy") or {}).get("restart_policy") or {}).get("condition", "")).lower()
        if restart == "no" or condition == "none":
            return None  # a one-shot job has nothing to health-check
        hc = svc.get("healthcheck")
        if not isinstance(hc, dict) or hc.get("disable") is True:
            return "no healthcheck"
        test = hc.get("test")
        if not test or (isinstance(test, list) and test and str(test[0]).upper() == "NONE"):
            return "healthcheck has no test"
        return None
    if rule == "CSM_C09":
        bad = [n for n in _env_names(svc.get("environment")) if secret_looking(n)]
        return f"secret-looking variable(s) {', '.join(bad)} in environment" if bad else None
    if rule == "CSM_C10":
        limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if limits.get("memory") or (not swarm and svc.get("mem_limit")):
            return None
        return "no memory limit (deploy.resources.limits.memory" + ("" if swarm else " or mem_limit") + ")"
    if rule == "CSM_C11":
        bad = _published_ports_not_loopback(svc.get("ports"))
        return f"ports published beyond loopback: {', '.join(bad)}" if bad else None
    if rule == "CSM_C12":
        image = svc.get("image")
        return None if isinstance(image, str) and DIGEST_RE.match(image) else f"image {image!r} not by digest"
    raise KeyError(rule)


def applicable_rules(swarm: bool, local: bool) -> list[str]:
    rules = []
    for rule in RULES:
        if rule in LOCAL_ONLY and not local:
            continue
        if rule in COMPOSE_ONLY and swarm:
            continue
        if rule in SWARM_ONLY and not swarm:
            continue
        rules.append(rule)
    return rules


def _merge(base: Any, override: Any) -> Any:
    """Compose's merge, closely enough for these rules: mappings merge key by key, anything else is
    replaced (Compose merges some lists by key, e.g. volumes by mount path; no rule reads those)."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
    return override


def _merged_with_base(base_path: Path, services: dict[str, Any], display: str) -> dict[str, Any]:
    """An override file (top-level `x-csm-base: <file>`, which Compose ignores) is checked as Compose
    runs it: each service merged onto its namesake in the base file, or onto the one it `extends`."""
    try:
        base = (yaml.safe_load(base_path.read_text(encoding="utf-8")) or {}).get("services") or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ComposeError(f"{display}: x-csm-base {base_path.name}: {exc}") from exc
    merged = {}
    for name, svc in services.items():
        if not isinstance(svc, dict):
            merged[name] = svc
            continue
        extends = svc.get("extends")
        origin = (
            base.get(extends.get("service") if isinstance(extends, dict) else extends, {})
            if extends
            else base.get(name, {})
        )
        merged[name] = _merge(origin, {k: v for k, v in svc.items() if k != "extends"})
    return merged


def check_file(path: Path, display: str, swarm: bool, local: bool) -> Iterator[Result]:
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
        spans = _service_lines(text)
    except yaml.YAMLError as exc:
        raise ComposeError(f"{display}: invalid YAML: {exc}") from exc
    services = (doc or {}).get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        raise ComposeError(f"{display}: no services: mapping")
    if isinstance(doc, dict) and doc.get("x-csm-base"):
        services = _merged_with_base(path.parent / str(doc["x-csm-base"]), services, display)
    lines = text.splitlines()
    for name, svc in services.items():
        if not isinstance(svc, dict):
            raise ComposeError(f"{display}: service {name} is not a mapping")
        span = spans.get(str(name), (1, len(lines)))
        skips = _suppressions(lines, span)
        for rule in applicable_rules(swarm, local):
            message = _check(rule, svc, swarm)
            if message is None:
                yield Result(display, str(name), rule, span[0], True)
            else:
                yield Result(display, str(name), rule, span[0], False, message, skips.get(rule))
