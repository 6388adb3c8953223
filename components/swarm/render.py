"""Swarm renderer: ServiceSpec + SwarmOptions -> the stack file ``docker stack deploy`` takes.

Pure: no engine, no network. The same function renders what ``make render`` writes
(build/rendered/<stack>/swarm/stack.yaml), what the Pulumi component deploys and what the
end-to-end tests deploy on the local Swarm; only the image digest and the secret versions
differ (``make render`` shows zeros where it cannot know them).

What the file holds, and why where it is not obvious:
- the CSM service by digest, run as 65532:65532 on a read-only root with a tmpfs /tmp, every
  capability dropped, health-checked with the image's own ``csm healthcheck`` (exec form);
- secrets as files (Docker secrets, owned by 65532, mode 0400) under /run/secrets, never in
  the environment: an environment-variable secret ``CSM_X`` becomes the file
  /run/secrets/csm_x plus ``CSM_X_FILE`` naming it, which the service reads. Docker secrets
  are immutable, so their names carry a hash of their content (``versioned_secret_name``): a
  rotated value is a new secret, and the changed reference rolls the service;
- start-first rolling updates one replica at a time, watched for a monitor window and rolled
  back automatically on failure; restarts with a delay, giving up only on a hot crash loop;
- replicas spread over zones (node label ``zone``) on nodes of the service's architecture;
- an overlay network, encrypted (IPsec) when csm:swarmOverlayEncrypted;
- publishing: ``ingress`` publishes the service port through the routing mesh (VIP);
  ``host`` puts the HAProxy service (deploy/swarm/proxy) on every node, published in host
  mode, health-checking the replicas and retrying failed requests on another one;
- logs to CloudWatch through Docker's awslogs driver when csm:swarmAwsLogs.

``security_opt: [no-new-privileges:true]`` is not rendered: ``docker stack deploy`` ignores it
("Ignoring unsupported options: security_opt", Docker CLI 28). On Swarm nodes no-new-privileges
is a daemon setting (``"no-new-privileges": true`` in daemon.json); see the README.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from components import per_stack
from components.spec import PLACEHOLDER_DIGEST, SecretRef, ServiceSpec

if TYPE_CHECKING:
    from components.config import StackConfig

STACK_FILE = "stack.yaml"


@dataclass(frozen=True)
class SwarmOptions:
    """What the stack file takes besides the spec (the csm:swarm* keys; the config validated them)."""

    stack_name: str
    endpoint_mode: str
    publish_mode: str
    published_port: int
    proxy_image: str | None
    proxy_tls_secret: str | None
    overlay_encrypted: bool
    aws_logs: bool
    aws_region: str | None


def swarm_options(cfg: StackConfig) -> SwarmOptions:
    s = cfg.swarm
    return SwarmOptions(
        stack_name=s.stack_name,
        endpoint_mode=s.endpoint_mode,
        publish_mode=s.publish_mode,
        published_port=s.published_port,
        proxy_image=s.proxy_image,
        proxy_tls_secret=s.proxy_tls_secret,
        overlay_encrypted=s.overlay_encrypted,
        aws_logs=s.aws_logs,
        aws_region=cfg.aws_region,
    )


NETWORK = "backend"
PROXY_SERVICE = "proxy"
PROXY_PORT = 8080
PROXY_MONITOR_PORT = 8081
PROXY_TLS_KEY = "proxy-tls"  # the stack file's key of the proxy's certificate-and-key secret (csm:swarmProxyTlsSecret)
PROXY_TLS_PATH = "/run/secrets/proxy-tls.pem"
PROXY_PLACEHOLDER = f"csm/swarm-proxy@{PLACEHOLDER_DIGEST}"
SECRET_VERSION_CHARS = 12
PLACEHOLDER_VERSION = "0" * SECRET_VERSION_CHARS
SECRET_FILE_MODE = 0o400
TMPFS_MODE = 0o1777
PIDS_LIMIT = 512
STOP_MARGIN_SECONDS = 5
UPDATE_DELAY = "5s"
RESTART_DELAY = "5s"
# A replica that fails this often within the window is crash-looping hot: stop restarting it
# (a deploy of a new spec version resets the count). Slower failures are restarted forever.
RESTART_MAX_ATTEMPTS = 20
RESTART_WINDOW = "120s"
ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}  # spec architecture -> node.platform.arch
SECRET_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?$")


def versioned_secret_name(stack: str, name: str, value: str | bytes, key: str | bytes | None = None) -> str:
    """Docker secret name for ``value``: ``<stack>-<name>-<first 12 hex of its HMAC-SHA256 under key>`` (<= 64 chars).

    The name is in the Pulumi state and in ``docker secret ls``: keyed with the stack's secret ``swarmSecretNameKey``, it
    cannot confirm a guessed value offline. Without a key (dev only, the config rules say), a plain SHA-256."""
    data = value.encode() if isinstance(value, str) else value
    if key:
        version = hmac.new(key.encode() if isinstance(key, str) else key, data, hashlib.sha256).hexdigest()[
            :SECRET_VERSION_CHARS
        ]
    else:
        version = hashlib.sha256(data).hexdigest()[:SECRET_VERSION_CHARS]
    prefix = f"{stack}-{name}"[: 64 - SECRET_VERSION_CHARS - 1].rstrip("-_.")
    return f"{prefix}-{version}"


def secret_key(secret: SecretRef) -> str:
    """The secret's key in the stack file (stable across versions)."""
    return secret.name


def secret_keys(spec: ServiceSpec, opts: SwarmOptions) -> list[str]:
    """Every Docker secret of the stack: the service's, plus the proxy's certificate when TLS is on."""
    return [secret_key(s) for s in spec.secrets] + ([PROXY_TLS_KEY] if opts.proxy_tls_secret else [])


def secret_target(secret: SecretRef) -> str:
    return secret.path or f"/run/secrets/{(secret.env or secret.name).lower()}"


def log_group_name(spec: ServiceSpec) -> str:
    return f"/swarm/{per_stack(spec.name, spec.stack)}"


def _seconds(value: int) -> str:
    return f"{value}s"


def monitor_seconds(spec: ServiceSpec) -> int:
    """How long an updated replica is watched: long enough for a replica that never turns
    healthy to be declared unhealthy (start period + every retry + one timeout)."""
    h = spec.health
    return max(10, h.start_period + h.interval * h.retries + h.timeout)


def _cpus(units: float) -> str:
    return f"{units / 1024:.3f}".rstrip("0").rstrip(".")


def _logging(spec: ServiceSpec, opts: SwarmOptions, stream: str) -> dict[str, Any]:
    if opts.aws_logs:
        return {
            "driver": "awslogs",
            "options": {
                "awslogs-region": opts.aws_region or "",
                "awslogs-group": log_group_name(spec),
                "awslogs-create-group": "false",  # the component creates it, with its retention
                "tag": f"{stream}/{{{{.Name}}}}",  # the stream: <service>/<task container name>
                "mode": "non-blocking",  # a slow CloudWatch never blocks the service's writes
                "max-buffer-size": "4m",
            },
        }
    return {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}


def _placement(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "constraints": ["node.platform.os == linux", f"node.platform.arch == {ARCH[spec.architecture]}"],
        "preferences": [{"spread": "node.labels.zone"}],
    }


def _restart_policy() -> dict[str, Any]:
    return {"condition": "any", "delay": RESTART_DELAY, "max_attempts": RESTART_MAX_ATTEMPTS, "window": RESTART_WINDOW}


def _hardening(spec: ServiceSpec) -> dict[str, Any]:
    sec = spec.security
    return {"user": sec.user, "read_only": sec.read_only_root_fs, "cap_drop": list(sec.drop_capabilities)}


def csm_service(spec: ServiceSpec, opts: SwarmOptions, secret_names: Mapping[str, str]) -> dict[str, Any]:
    sec, h = spec.security, spec.health
    env = dict(spec.env)
    mounts = []
    for secret in spec.secrets:
        target = secret_target(secret)
        if secret.env:
            env[f"{secret.env}_FILE"] = target
        mounts.append(
            {
                "source": secret_key(secret),
                "target": target,
                "uid": str(sec.uid),
                "gid": str(sec.gid),
                "mode": SECRET_FILE_MODE,
            }
        )
    monitor = _seconds(monitor_seconds(spec))
    service: dict[str, Any] = {
        "image": spec.image,
        "environment": dict(sorted(env.items())),
        **_hardening(spec),
        "volumes": [
            {"type": "tmpfs", "target": path, "tmpfs": {"size": sec.tmpfs_size_mib * 1024 * 1024, "mode": TMPFS_MODE}}
            for path in sec.tmpfs_paths
        ],
        "healthcheck": {
            "test": ["CMD", *h.command],
            "interval": _seconds(h.interval),
            "timeout": _seconds(h.timeout),
            "retries": h.retries,
            "start_period": _seconds(h.start_period),
            "start_interval": "2s",
        },
        # The service drains for drain_seconds (CSM_SHUTDOWN_TIMEOUT) after SIGTERM; then a margin to exit.
        "stop_grace_period": _seconds(spec.drain_seconds + STOP_MARGIN_SECONDS),
        "networks": [NETWORK],
    }
    if mounts:
        service["secrets"] = mounts
    if opts.publish_mode == "ingress":
        service["ports"] = [
            {"target": spec.port, "published": opts.published_port, "protocol": "tcp", "mode": "ingress"}
        ]
    service["logging"] = _logging(spec, opts, spec.name)
    cpus = _cpus(spec.resources.cpu_units)
    service["deploy"] = {
        "mode": "replicated",
        "replicas": spec.scaling.desired,
        "endpoint_mode": opts.endpoint_mode,
        "labels": {"csm.stack": spec.stack, "csm.environment": spec.environment},
        "resources": {
            "limits": {"cpus": cpus, "memory": f"{spec.resources.memory_mib}M", "pids": PIDS_LIMIT},
            # Memory is reserved in full (never overcommitted); CPU is compressible, half is reserved.
            "reservations": {"cpus": _cpus(spec.resources.cpu_units / 2), "memory": f"{spec.resources.memory_mib}M"},
        },
        "update_config": {
            "parallelism": 1,
            "delay": UPDATE_DELAY,
            "order": "start-first",
            "failure_action": "rollback",
            "monitor": monitor,
            "max_failure_ratio": 0,
        },
        "rollback_config": {
            "parallelism": 1,
            "delay": "0s",
            "order": "start-first",
            "failure_action": "pause",
            "monitor": monitor,
            "max_failure_ratio": 0,
        },
        "restart_policy": _restart_policy(),
        "placement": _placement(spec),
    }
    return service


def proxy_service(spec: ServiceSpec, opts: SwarmOptions) -> dict[str, Any]:
    service = _proxy_service(spec, opts)
    if opts.proxy_tls_secret:
        # TLS at the proxy: HAProxy serves HTTPS only on the published port (haproxy.cfg, PROXY_TLS_CERT).
        service["environment"]["PROXY_TLS_CERT"] = PROXY_TLS_PATH
        service["secrets"] = [
            {
                "source": PROXY_TLS_KEY,
                "target": PROXY_TLS_PATH,
                "uid": str(spec.security.uid),
                "gid": str(spec.security.gid),
                "mode": SECRET_FILE_MODE,
            }
        ]
    return service


def _proxy_service(spec: ServiceSpec, opts: SwarmOptions) -> dict[str, Any]:
    return {
        "image": opts.proxy_image or PROXY_PLACEHOLDER,
        "environment": {
            "PROXY_PORT": str(PROXY_PORT),
            "PROXY_MONITOR_PORT": str(PROXY_MONITOR_PORT),  # the health check's loopback-only monitor
            "CSM_BACKEND_HOST": f"tasks.{spec.name}",  # every healthy task, in vip and dnsrr mode alike
            "CSM_BACKEND_PORT": str(spec.port),
            "CSM_HEALTH_PATH": spec.health.ready_path,
        },
        **_hardening(spec),
        "healthcheck": {
            "test": ["CMD", "proxy-healthcheck"],
            "interval": "5s",
            "timeout": "3s",
            "retries": 3,
            "start_period": "10s",
            "start_interval": "1s",
        },
        "stop_signal": "SIGUSR1",  # HAProxy's soft stop: finish in-flight requests
        "stop_grace_period": "30s",
        "networks": [NETWORK],
        "ports": [{"target": PROXY_PORT, "published": opts.published_port, "protocol": "tcp", "mode": "host"}],
        "logging": _logging(spec, opts, PROXY_SERVICE),
        "deploy": {
            "mode": "global",  # one per node: each node's published port answers
            "labels": {"csm.stack": spec.stack, "csm.environment": spec.environment},
            "resources": {
                "limits": {"cpus": "0.5", "memory": "128M", "pids": 256},
                "reservations": {"cpus": "0.05", "memory": "32M"},
            },
            # A host-mode port cannot be bound twice on a node: the old proxy stops first.
            "update_config": {
                "parallelism": 1,
                "delay": UPDATE_DELAY,
                "order": "stop-first",
                "failure_action": "rollback",
                "monitor": "20s",
                "max_failure_ratio": 0,
            },
            "rollback_config": {"parallelism": 1, "order": "stop-first", "failure_action": "pause", "monitor": "20s"},
            "restart_policy": _restart_policy(),
            "placement": {"constraints": _placement(spec)["constraints"]},
        },
    }


def placeholder_secret_names(spec: ServiceSpec, opts: SwarmOptions) -> dict[str, str]:
    """What ``make render`` shows for secret versions it cannot know: ...-000000000000."""
    names = {}
    for key in secret_keys(spec, opts):
        real = versioned_secret_name(opts.stack_name, key, b"")
        names[key] = real[:-SECRET_VERSION_CHARS] + PLACEHOLDER_VERSION
    return names


def stack_document(
    spec: ServiceSpec, opts: SwarmOptions, secret_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The stack file as data. ``secret_names``: secret key -> versioned Docker secret name."""
    keys = secret_keys(spec, opts)
    names = dict(placeholder_secret_names(spec, opts) if secret_names is None else secret_names)
    missing = [k for k in keys if k not in names]
    if missing:
        raise ValueError(f"no versioned Docker secret name for {', '.join(missing)}")
    bad = [n for n in names.values() if not SECRET_NAME.match(n)]
    if bad:
        raise ValueError(f"not valid Docker secret names: {', '.join(bad)}")
    services = {spec.name: csm_service(spec, opts, names)}
    if opts.publish_mode == "host":
        services[PROXY_SERVICE] = proxy_service(spec, opts)
    network: dict[str, Any] = {"driver": "overlay"}
    if opts.overlay_encrypted:
        network["driver_opts"] = {"encrypted": "true"}
    doc: dict[str, Any] = {"services": services, "networks": {NETWORK: network}}
    if keys:
        doc["secrets"] = {k: {"external": True, "name": names[k]} for k in keys}
    return doc


HEADER = """\
# CSM on Docker Swarm: stack '{stack}', rendered by components/swarm/render.py from the stack
# config. Deploy it as the Pulumi component does (components/swarm/stack.py):
#   deploy/swarm/stack-deploy {stack} < stack.yaml
# (docker stack deploy --with-registry-auth --prune --detach=false -c - {stack}).
# The Docker secrets it names must exist: their names end in the first 12 hex digits of the
# HMAC-SHA256 of their content under the stack's swarmSecretNameKey (000000000000 where the value is
# unknown, as in `make render`).
# Modes are decimal: 256 = 0400, 1023 = 01777.
"""


def render_stack(spec: ServiceSpec, opts: SwarmOptions, secret_names: Mapping[str, str] | None = None) -> str:
    doc = stack_document(spec, opts, secret_names)
    return HEADER.format(stack=opts.stack_name) + yaml.safe_dump(doc, sort_keys=False, width=1000)


def render_files(cfg: StackConfig, spec: ServiceSpec) -> dict[str, str]:
    return {STACK_FILE: render_stack(spec, swarm_options(cfg))}
