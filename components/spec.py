"""Target-neutral description of what runs: ServiceSpec.

Built once from the stack config (``build_spec``); the renderers (ECS container definitions,
Kubernetes objects, Swarm stack file) and the components read only this, never the config.
Security settings are constants here, not config: every target runs the image as uid 65532
with a read-only root filesystem, a writable tmpfs at /tmp and every capability dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from components import per_stack
from components.config import SecretRef, StackConfig

UID = 65532
GID = 65532
KEYSPACES_PORT = 9142
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


@dataclass(frozen=True)
class HealthCheck:
    command: tuple[str, ...]  # exec form, run inside the container
    ready_path: str
    live_path: str
    interval: int
    timeout: int
    retries: int
    start_period: int


@dataclass(frozen=True)
class Resources:
    cpu_units: int  # 1024 = 1 vCPU
    memory_mib: int

    @property
    def cpu_millicores(self) -> int:
        return self.cpu_units * 1000 // 1024


@dataclass(frozen=True)
class Scaling:
    desired: int
    min: int
    max: int
    cpu_target: int
    memory_target: int
    requests_per_target: int
    scale_in_cooldown: int
    scale_out_cooldown: int


@dataclass(frozen=True)
class Security:
    uid: int = UID
    gid: int = GID
    read_only_root_fs: bool = True
    tmpfs_paths: tuple[str, ...] = ("/tmp",)  # nosec B108 # the container's writable tmpfs mount point, not a host temp file
    tmpfs_size_mib: int = 64
    drop_capabilities: tuple[str, ...] = ("ALL",)
    no_new_privileges: bool = True

    @property
    def user(self) -> str:
        return f"{self.uid}:{self.gid}"


@dataclass(frozen=True)
class Datastore:
    keyspaces: bool  # Amazon Keyspaces (IAM permissions needed) vs external Cassandra
    keyspace: str
    contact_points: tuple[str, ...]
    port: int
    tls: bool


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    stack: str
    environment: str
    region: str | None
    image: str  # always by digest: repository@sha256:...
    port: int
    architecture: Literal["arm64", "x86_64"]
    env: tuple[tuple[str, str], ...]  # sorted (name, value); never secrets
    secrets: tuple[SecretRef, ...]
    health: HealthCheck
    resources: Resources
    scaling: Scaling
    datastore: Datastore
    drain_seconds: int
    log_retention_days: int
    security: Security = field(default_factory=Security)
    # ECS, an image outside ECR: the Secrets Manager secret (name or ARN) with the private registry's credentials.
    registry_credentials: str | None = None

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/instance": per_stack(self.name, self.stack)}

    def with_image(self, image: str) -> ServiceSpec:
        if "@sha256:" not in image:
            raise ValueError(f"image must be referenced by digest (repository@sha256:...), got {image!r}")
        return dataclasses.replace(self, image=image)


KEEP_ALIVE_MARGIN_SECONDS = 5


def keep_alive_timeout(idle_timeout: int) -> int:
    """The service's HTTP keep-alive for a load balancer idle timeout: always longer."""
    return idle_timeout + KEEP_ALIVE_MARGIN_SECONDS


def placeholder_image(cfg: StackConfig) -> str:
    """What ``make render`` shows before a build: the configured imageRef, else repository@<zero digest>."""
    return cfg.image.ref or f"{cfg.image_repository}@{PLACEHOLDER_DIGEST}"


def build_spec(cfg: StackConfig, image: str | None = None) -> ServiceSpec:
    image = image or placeholder_image(cfg)
    cas = cfg.cassandra
    if cas.mode == "keyspaces":
        datastore = Datastore(True, cas.keyspace, (f"cassandra.{cfg.aws_region}.amazonaws.com",), KEYSPACES_PORT, True)
        local_dc = cfg.aws_region or ""
    else:
        datastore = Datastore(False, cas.keyspace, tuple(cas.contact_points), cas.port, cas.tls)
        local_dc = cas.local_dc or ""
    # The service's settings (app/src/csm/config.py, CSM_* variables); csm:serviceEnv may override.
    env = {
        "CSM_HOST": "0.0.0.0",  # nosec B104 # listens on the container's interfaces; only the load balancer's security group reaches it
        "CSM_PORT": str(cfg.service.port),
        "CSM_LOG_LEVEL": cfg.service.log_level,
        "CSM_SHUTDOWN_TIMEOUT": str(cfg.service.drain_seconds),
        # HTTP keep-alive above the load balancer's idle timeout (one setting, csm:albIdleTimeout, on every target): the
        # load balancer, not the server, closes idle connections, so it never reuses one the server is closing (502s).
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout
        "CSM_KEEP_ALIVE_TIMEOUT": str(keep_alive_timeout(cfg.ingress.idle_timeout)),
        "CSM_CASSANDRA_CONTACT_POINTS": ",".join(datastore.contact_points),
        "CSM_CASSANDRA_PORT": str(datastore.port),
        "CSM_CASSANDRA_KEYSPACE": datastore.keyspace,
        "CSM_CASSANDRA_LOCAL_DC": local_dc,
    }
    if datastore.tls:
        env["CSM_CASSANDRA_TLS_CA_FILE"] = cas.tls_ca_file  # setting it is what turns TLS on
    if datastore.keyspaces:
        # Keyspaces mode: protocol v4, TLS name cassandra.<region>.amazonaws.com, SingleRegionStrategy,
        # SigV4 with the task/pod role unless CSM_CASSANDRA_USERNAME/PASSWORD secrets are given.
        env["CSM_CASSANDRA_MODE"] = "keyspaces"
        env["CSM_CASSANDRA_AWS_REGION"] = cfg.aws_region or ""
    env.update(cfg.service.env_map)
    secrets = tuple(cfg.secrets.entries)
    h, s = cfg.health, cfg.scaling
    spec = ServiceSpec(
        name=cfg.name,
        stack=cfg.stack,
        environment=cfg.general.environment,
        region=cfg.aws_region,
        image=image,
        port=cfg.service.port,
        architecture=cfg.service.architecture,
        env=tuple(sorted(env.items())),
        secrets=secrets,
        health=HealthCheck(
            tuple(h.command), h.ready_path, h.live_path, h.interval, h.timeout, h.retries, h.start_period
        ),
        resources=Resources(cfg.service.cpu, cfg.service.memory),
        scaling=Scaling(
            cfg.service.desired_count,
            s.min_count,
            s.max_count,
            s.cpu_target,
            s.memory_target,
            s.requests_per_target,
            s.scale_in_cooldown,
            s.scale_out_cooldown,
        ),
        datastore=datastore,
        drain_seconds=cfg.service.drain_seconds,
        log_retention_days=cfg.service.log_retention_days,
        registry_credentials=cfg.image.repository_credentials,
    )
    return spec.with_image(image)
