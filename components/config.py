"""The whole stack config as one typed model, parsed once, every error reported together.

Stack config uses flat, project-namespaced keys (``csm:servicePort``) with the simple types
Pulumi's project schema understands (string, integer, boolean, array of strings), so every key
is declared with type, default and description in ``Pulumi.yaml`` and the Pulumi CLI checks
the types too. The model groups them into sections (``cfg.service.port``); each field's alias
is its flat key. ``Pulumi.yaml``'s ``config:`` block is generated from this module
(``python -m components.config pulumi-yaml``) and a unit test keeps the two equal.

Parsing: ``StackConfig.load(values, stack=...)`` takes a mapping of keys (``servicePort`` or
``csm:servicePort``, plus ``aws:region``) to values (Pulumi's strings/JSON or plain Python
values) and raises ``ConfigError`` listing every bad key with its reason. ``from_pulumi()``
reads the running program's config. Nothing here touches the network.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.config import JsonDict

from components import per_stack

NAMESPACE = "csm"
AWS_REGION_KEY = "aws:region"

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

# Fargate task sizes: cpu units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SECRETISH_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL)", re.I)
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+$")
ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$")
CONFIG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
IMAGE_BY_DIGEST = re.compile(r"^[a-z0-9][a-z0-9._:/-]*@sha256:[0-9a-f]{64}$")
# What app/Dockerfile declares, and the service settings (app/src/csm/config.py) a deployment must feed.
IMAGE_HEALTHCHECK = ("/opt/venv/bin/python", "-m", "csm", "healthcheck")
IMAGE_SECRETS_DIR = "/run/secrets"
REQUIRED_SECRET_SETTINGS = ("master_key", "api_tokens")
GRAVITON_TYPE = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*\.")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^@]+@sha256:[0-9a-f]{64}$")
SECRET_PLACEHOLDER = "<secret>"  # nosec B105 # what components.stackfiles shows for an encrypted value; not a secret

# EKS node capacity (managed node groups, AL2023 AMIs). vCPUs by size; GiB of memory per vCPU by family class.
EC2_SIZE_VCPUS = {"medium": 1, "large": 2, "xlarge": 4}
EC2_MEMORY_PER_VCPU = {"m": 4, "c": 2, "r": 8}
# DaemonSets on every node (requests): aws-node 25m + kube-proxy 100m; the CloudWatch agent and Fluent Bit of the
# amazon-cloudwatch-observability add-on (eksContainerInsights) about 300m / 400Mi more.
DAEMONSET_CPU_M, DAEMONSET_MEM_MI = 125, 128
INSIGHTS_CPU_M, INSIGHTS_MEM_MI = 300, 400


def instance_capacity(instance_type: str) -> tuple[int, int, int] | None:
    """(vCPUs, memory MiB, max pods) of an m/c/r family type (m7g.large, c6i.2xlarge, ...); None for others."""
    match = re.match(r"^([mcr])\d+[a-z]*\.(medium|large|xlarge|(\d+)xlarge)$", instance_type)
    if not match:
        return None
    family, size, times = match.groups()
    vcpus = int(times) * 4 if times else EC2_SIZE_VCPUS[size]
    max_pods = {1: 8, 2: 29, 4: 58, 8: 58}.get(vcpus, 110 if vcpus < 30 else 250)
    return vcpus, vcpus * EC2_MEMORY_PER_VCPU[family] * 1024, max_pods


def allocatable(instance_type: str) -> tuple[int, int] | None:
    """Allocatable (millicores, MiB) as the EKS AMI's bootstrap computes it: kube-reserved CPU 6% of the first core, 1% of the
    second, 0.5% of cores 3-4, 0.25% of the rest; kube-reserved memory 255Mi + 11Mi per pod; eviction threshold 100Mi."""
    cap = instance_capacity(instance_type)
    if cap is None:
        return None
    vcpus, mem, max_pods = cap
    reserved = 60 + (10 if vcpus > 1 else 0) + 5 * max(0, min(vcpus, 4) - 2) + 2.5 * max(0, vcpus - 4)
    return vcpus * 1000 - int(reserved + 0.999), mem - (255 + 11 * max_pods) - 100


def pods_per_node(instance_type: str, cpu_m: int, mem_mi: int, insights: bool) -> int | None:
    alloc = allocatable(instance_type)
    if alloc is None:
        return None
    cpu = alloc[0] - DAEMONSET_CPU_M - (INSIGHTS_CPU_M if insights else 0)
    mem = alloc[1] - DAEMONSET_MEM_MI - (INSIGHTS_MEM_MI if insights else 0)
    return max(0, min(cpu // max(cpu_m, 1), mem // max(mem_mi, 1)))


class Problem(typing.NamedTuple):
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class ConfigError(ValueError):
    """Every problem of a stack config, each naming its key (``csm:servicePort``)."""

    def __init__(self, problems: Iterable[Problem], stack: str = ""):
        self.problems = list(dict.fromkeys(problems))
        self.stack = stack
        where = f" of stack '{stack}'" if stack else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid config{where} ({len(self.problems)} problem(s)):\n{lines}")

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.problems]


def qualify(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"


def _f(key: str, default: Any = ..., description: str = "", secret: bool = False, **kw: Any) -> Any:
    extra: JsonDict | None = {"secret": True} if secret else None  # nosec B105 # flags a key as secret in Pulumi.yaml; holds no secret
    return Field(default, alias=key, description=description, json_schema_extra=extra, **kw)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_string_is_unset(cls, value: Any, info: Any) -> Any:
        # Pulumi's schema has no "optional string": optional keys default to "" (= not set).
        field = cls.model_fields[info.field_name]
        if value == "" and _is_optional(field.annotation):
            return None
        return value


def _is_optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(
        None
    ) in typing.get_args(annotation)


# --------------------------------------------------------------------------- sections


class GeneralConfig(_Section):
    target: Literal["ecs", "eks", "kubernetes", "swarm"] = _f(
        "target",
        "ecs",
        "Where CSM runs: ECS Fargate, EKS, any Kubernetes cluster (by kubeconfig) or a Docker Swarm host.",
    )
    environment: Literal["dev", "staging", "prod"] = _f(
        "environment",
        ...,
        "Environment class; 'prod' turns on the strict rules (>=2 tasks in >=2 AZs, HTTPS, deletion protection, ...).",
    )
    service_name: str = _f(
        "serviceName",
        "csm",
        "Name prefix of every resource (lowercase letters, digits, '-'; at most 16 characters).",
        pattern=r"^[a-z][a-z0-9-]{0,15}$",
    )
    resource_tags: list[str] = _f("resourceTags", [], "Extra tags on every AWS resource, each 'Key=Value'.")
    deletion_protection: bool = _f(
        "deletionProtection",
        False,
        "Protect stateful resources (ALB deletion protection, ECR repository, log group, Pulumi protect). Required in prod.",
    )

    @field_validator("resource_tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            key, sep, _ = tag.partition("=")
            if not sep or not key or len(key) > 128:
                raise ValueError(f"each tag must be 'Key=Value' with a key of 1-128 characters (got {tag!r})")
        return tags

    @property
    def tags(self) -> dict[str, str]:
        return dict(t.split("=", 1) for t in self.resource_tags)


Platform = Literal["linux/amd64", "linux/arm64"]


class ImageConfig(_Section):
    registry: str | None = _f(
        "imageRegistry",
        None,
        "Registry the built image is pushed to: empty = Amazon ECR (the stack creates the repositories); otherwise an existing "
        "registry's host[:port][/path] (e.g. 127.0.0.1:5000), pushed as <imageRegistry>/<imageRepository>.",
        pattern=r"^[a-z0-9.-]+(:\d{1,5})?(/[a-z0-9._-]+)*$",
    )
    registry_username: str | None = _f(
        "imageRegistryUsername", None, "imageRegistry: user name to push with (empty = no login)."
    )
    registry_password: str | None = _f(
        "imageRegistryPassword", None, "imageRegistry: password or token to push with.", secret=True
    )
    build_exec: bool = _f(
        "imageBuildExec",
        False,
        "Build with the local docker CLI (docker buildx and its default builder) instead of pulumi-docker-build's embedded BuildKit client.",
    )
    compression: Literal["gzip", "zstd"] = _f(
        "imageCompression",
        "gzip",
        "Layer compression of the pushed image. zstd (level 19, every layer recompressed) is smaller (the reference image: 21 MB "
        "against 28 MB gzip) and faster to unpack (AWS documents it for faster Fargate starts); pulling it needs containerd 1.5+ (EKS, "
        "Kubernetes) or Docker Engine 23.0+ (Swarm). gzip: every client.",
    )
    build_network: Literal["default", "host"] = _f(
        "imageBuildNetwork",
        "default",
        "Network of the build's RUN steps (host: reach a proxy or mirror on the build host).",
    )
    build_args: list[str] = _f(
        "imageBuildArgs", [], "Extra build arguments, each 'NAME=value' (e.g. BASE_IMAGE=<a base image you can pull>)."
    )
    build_secret_files: list[str] = _f(
        "imageBuildSecretFiles",
        [],
        "BuildKit secrets from files on the build host, each '<id>=<absolute path>' (e.g. ca=/etc/ssl/certs/ca-certificates.crt).",
    )
    repository: str | None = _f(
        "imageRepository",
        None,
        "Repository the image is pushed to (ECR repository, or the path below imageRegistry); empty = '<serviceName>-<stack>' (repository names are unique per "
        "account and region, so two stacks sharing one name collide unless they share it on purpose).",
        pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
        max_length=256,
    )
    context: str = _f("imageContext", "app", "Docker build context, relative to the project root.", min_length=1)
    dockerfile: str = _f("imageDockerfile", "app/Dockerfile", "Dockerfile, relative to the project root.", min_length=1)
    platforms: list[Platform] = _f(
        "imagePlatforms",
        ["linux/amd64", "linux/arm64"],
        "Platforms the image is built for (must include the service's CPU architecture).",
        min_length=1,
    )
    version: str | None = _f(
        "imageVersion",
        None,
        "Version part of the tag; empty = the version in app/pyproject.toml. Images are tagged '<version>-<git sha>' (plus '-dirty-<hash>' for uncommitted changes), never 'latest'.",
        pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$",
    )
    ref: str | None = _f(
        "imageRef",
        None,
        "Deploy this existing image (repository@sha256:<digest>) instead of building one; empty = build, scan and push.",
    )
    scan: bool = _f(
        "imageScan",
        True,
        "Scan the built image with Trivy and block the push on the vulnerability gate. Required in prod.",
    )
    scan_policy: Literal["prod", "dev"] = _f(
        "imageScanPolicy",
        "prod",
        "Vulnerability gate policy (python -m security.gate --policy): prod also blocks fixable HIGH; CRITICAL always blocks.",
    )
    kms_key_arn: str | None = _f(
        "imageKmsKeyArn", None, "KMS key for ECR encryption; empty = the AWS managed key (aws/ecr)."
    )
    repository_credentials: str | None = _f(
        "imageRepositoryCredentials",
        None,
        'ECS with an imageRef outside ECR (ghcr.io, ...): Secrets Manager secret (name or ARN) holding {"username", "password"} for the '
        "private registry (the task definition's repositoryCredentials).",
        pattern=r"^[A-Za-z0-9/_+=.@:-]{1,2048}$",
    )
    unpulled_expiry_days: int = _f(
        "imageUnpulledExpiryDays",
        90,
        "Lifecycle policy: expire a tagged release image only after it was not pulled for this many days "
        "(sinceImagePulled; running tasks, pods and rollback targets are pulled again on every start).",
        ge=30,
        le=3650,
    )
    untagged_expiry_days: int = _f(
        "imageUntaggedExpiryDays",
        7,
        "Lifecycle policy: expire untagged images (build cache layers excluded) after this many days.",
        ge=1,
        le=365,
    )

    @field_validator("build_args")
    @classmethod
    def _build_args(cls, items: list[str]) -> list[str]:
        for item in items:
            name, sep, _ = item.partition("=")
            if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"each entry must be 'NAME=value' (got {name!r})")
        return items

    @field_validator("build_secret_files")
    @classmethod
    def _build_secret_files(cls, items: list[str]) -> list[str]:
        for item in items:
            sid, sep, path = item.partition("=")
            if not sep or not re.match(r"^[A-Za-z0-9_.-]+$", sid) or not path.startswith("/"):
                raise ValueError(f"each entry must be '<id>=<absolute path>' (got {item!r})")
        return items

    @property
    def build_arg_map(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.build_args)

    @property
    def build_secret_map(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.build_secret_files)

    @field_validator("ref")
    @classmethod
    def _ref(cls, ref: str | None) -> str | None:
        if ref is not None and not IMAGE_BY_DIGEST.match(ref):
            raise ValueError(f"must be an image reference by digest, 'repository@sha256:<64 hex>' (got {ref!r})")
        return ref

    @field_validator("kms_key_arn")
    @classmethod
    def _kms(cls, arn: str | None) -> str | None:
        if arn is not None and not KMS_ARN.match(arn):
            raise ValueError(f"must be a KMS key or alias ARN (got {arn!r})")
        return arn


class ServiceConfig(_Section):
    port: int = _f(
        "servicePort",
        8000,
        "Port the service listens on inside the container (>=1024: the process runs without capabilities).",
        ge=1,
        le=65535,
    )
    cpu: int = _f(
        "serviceCpu",
        512,
        "CPU units per task (1024 = 1 vCPU); on ECS a valid Fargate size together with serviceMemory.",
        ge=128,
        le=16384,
    )
    memory: int = _f("serviceMemory", 1024, "Memory per task in MiB.", ge=256, le=122880)
    desired_count: int = _f(
        "serviceDesiredCount",
        2,
        "Swarm: the replica count. ECS: the task count the service starts with (Application Auto Scaling owns it "
        "afterwards, within scalingMinCount..scalingMaxCount). Not used on EKS and Kubernetes: the "
        "HorizontalPodAutoscaler starts at scalingMinCount.",
        ge=1,
        le=100,
    )
    architecture: Literal["arm64", "x86_64"] = _f(
        "serviceArchitecture", "arm64", "CPU architecture the service runs on (ECS runtime platform, EKS nodes)."
    )
    env: list[str] = _f(
        "serviceEnv", [], "Extra non-secret environment variables, each 'NAME=value'. Secrets go in csm:secrets."
    )
    drain_seconds: int = _f(
        "serviceDrainSeconds",
        30,
        "Seconds a stopping task finishes in-flight requests (CSM_SHUTDOWN_TIMEOUT, ALB deregistration delay, stop timeout).",
        ge=1,
        le=115,
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _f(
        "serviceLogLevel", "INFO", "Service log level (CSM_LOG_LEVEL)."
    )
    log_retention_days: int = _f(
        "logRetentionDays", 30, "CloudWatch Logs retention in days (one of CloudWatch's allowed values)."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, level: Any) -> Any:
        return level.upper() if isinstance(level, str) else level

    @field_validator("port")
    @classmethod
    def _unprivileged(cls, port: int) -> int:
        if port < 1024:
            raise ValueError(
                f"must be >= 1024: the container runs as uid 65532 with every capability dropped and cannot bind {port}"
            )
        return port

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} (got {days})")
        return days

    @field_validator("env")
    @classmethod
    def _env(cls, items: list[str]) -> list[str]:
        seen: set[str] = set()
        for item in items:
            name, sep, _ = item.partition("=")
            if not sep or not ENV_NAME.match(name):
                raise ValueError(f"each entry must be 'NAME=value' with NAME in [A-Z0-9_] (got {item.split('=')[0]!r})")
            if SECRETISH_ENV.search(name):
                raise ValueError(
                    f"{name} looks like a secret; put it in csm:secrets (Secrets Manager) instead of plaintext environment"
                )
            if name in seen:
                raise ValueError(f"{name} is set twice")
            seen.add(name)
        return items

    @property
    def env_map(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.env)


class HealthConfig(_Section):
    command: list[str] = _f(
        "healthCheckCommand",
        list(IMAGE_HEALTHCHECK),
        "Container health check, exec form (the image has no shell): the image's own HEALTHCHECK command.",
        min_length=1,
    )
    ready_path: str = _f(
        "healthReadyPath",
        "/health/ready",
        "HTTP readiness endpoint (ALB target group, Kubernetes readiness probe).",
        pattern=r"^/[A-Za-z0-9/_.-]*$",
    )
    live_path: str = _f(
        "healthLivePath",
        "/health/live",
        "HTTP liveness endpoint (Kubernetes liveness/startup probes).",
        pattern=r"^/[A-Za-z0-9/_.-]*$",
    )
    interval: int = _f("healthCheckInterval", 15, "Seconds between health checks.", ge=5, le=300)
    timeout: int = _f("healthCheckTimeout", 5, "Seconds before a health check counts as failed.", ge=2, le=60)
    retries: int = _f("healthCheckRetries", 3, "Consecutive failures before a task is unhealthy.", ge=1, le=10)
    start_period: int = _f(
        "healthCheckStartPeriod", 30, "Seconds after start during which failures do not count.", ge=0, le=300
    )


class ScalingConfig(_Section):
    min_count: int = _f(
        "scalingMinCount",
        2,
        "Autoscaling lower bound (ECS tasks, EKS/Kubernetes pods); not used on Swarm.",
        ge=1,
        le=100,
    )
    max_count: int = _f(
        "scalingMaxCount",
        6,
        "Autoscaling upper bound (ECS tasks, EKS/Kubernetes pods); not used on Swarm.",
        ge=1,
        le=100,
    )
    cpu_target: int = _f("scalingCpuTarget", 60, "Target average CPU utilisation, percent.", ge=10, le=95)
    memory_target: int = _f("scalingMemoryTarget", 70, "Target average memory utilisation, percent.", ge=10, le=95)
    requests_per_target: int = _f(
        "scalingRequestsPerTarget", 500, "Target ALB requests per task per minute (ECS).", ge=1, le=100000
    )
    scale_in_cooldown: int = _f("scalingScaleInCooldown", 300, "Seconds between scale-in steps.", ge=0, le=3600)
    scale_out_cooldown: int = _f("scalingScaleOutCooldown", 60, "Seconds between scale-out steps.", ge=0, le=3600)


@dataclass(frozen=True)
class SecretRef:
    """One ``csm:secrets`` item: a secret the service reads, where its value comes from and what it
    feeds (one of env / path). The config parses it; the spec and every target carry it as is."""

    name: str  # logical, DNS-label safe: "cassandra-password"
    source: Literal["aws", "pulumi"]
    ref: str  # Secrets Manager name or ARN (source aws), or a Pulumi config key (source pulumi)
    env: str | None = None
    path: str | None = None

    @property
    def is_arn(self) -> bool:
        return self.ref.startswith("arn:")


def secret_name(target: str) -> str:
    """The logical name of the secret feeding ``target`` (an env var or a file path)."""
    base = target.rsplit("/", 1)[-1] if target.startswith("/") else target
    base = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
    return base.removeprefix("csm-") or "secret"


class SecretsConfig(_Section):
    items: list[str] = _f(
        "secrets",
        [],
        "Secrets, each 'ENV_VAR=<ref>' (environment variable) or '/abs/path=<ref>' (file). <ref> is a Secrets Manager name or ARN "
        "(secretSource aws) or the name of a Pulumi secret config key (secretSource pulumi).",
    )
    source: Literal["aws", "pulumi"] = _f(
        "secretSource",
        "aws",
        "Where secret values live: AWS Secrets Manager, or Pulumi config secrets (EKS/Swarm only; ECS reads Secrets Manager).",
    )
    kms_key_arns: list[str] = _f(
        "secretsKmsKeyArns",
        [],
        "Customer managed KMS keys the secrets are encrypted with (the execution role may decrypt with them).",
    )

    @field_validator("items")
    @classmethod
    def _items(cls, items: list[str]) -> list[str]:
        targets: set[str] = set()
        for index, item in enumerate(items):
            target, sep, ref = item.partition("=")
            if not sep or not ref:
                raise ValueError(
                    f"item {index} must be 'ENV_VAR=<ref>' or '/path/file=<ref>' (got {target!r} without '=<ref>')"
                )
            if target.startswith("/"):
                if not re.match(r"^(/[A-Za-z0-9._-]+)+$", target) or "/.." in target:
                    raise ValueError(f"item {index}: {target!r} is not a clean absolute file path")
            elif not ENV_NAME.match(target):
                raise ValueError(
                    f"item {index}: {target!r} is neither an environment variable name ([A-Z0-9_]) nor an absolute path"
                )
            if not (SECRET_ARN.match(ref) or SECRET_NAME.match(ref)):
                raise ValueError(f"item {index}: {ref!r} is not a Secrets Manager name/ARN or config key")
            if target in targets:
                raise ValueError(f"item {index}: {target} is fed twice")
            targets.add(target)
        return items

    @field_validator("kms_key_arns")
    @classmethod
    def _kms(cls, arns: list[str]) -> list[str]:
        for arn in arns:
            if not KMS_ARN.match(arn):
                raise ValueError(f"must be KMS key ARNs (got {arn!r})")
        return arns

    @property
    def entries(self) -> list[SecretRef]:
        out = []
        for item in self.items:
            target, _, ref = item.partition("=")
            feeds = {"path": target} if target.startswith("/") else {"env": target}
            out.append(SecretRef(name=secret_name(target), source=self.source, ref=ref, **feeds))
        return out


class CassandraConfig(_Section):
    mode: Literal["keyspaces", "external"] = _f(
        "cassandraMode", "external", "Amazon Keyspaces (IAM, TLS on 9142) or an external Cassandra cluster."
    )
    contact_points: list[str] = _f(
        "cassandraContactPoints", [], "External mode: Cassandra hosts ('host' or 'host:port')."
    )
    port: int = _f("cassandraPort", 9042, "External mode: CQL port.", ge=1, le=65535)
    keyspace: str = _f(
        "cassandraKeyspace", "csm", "Keyspace CSM keeps its state in.", pattern=r"^[a-z][a-z0-9_]{0,47}$"
    )
    local_dc: str | None = _f(
        "cassandraLocalDc", None, "External mode: the driver's local datacenter (required there)."
    )
    tls: bool = _f("cassandraTls", True, "Connect with TLS (always on for Keyspaces; required in prod).")
    tls_ca_file: str = _f(
        "cassandraTlsCaFile",
        "/etc/ssl/certs/ca-certificates.crt",
        "CA bundle inside the container that TLS trusts (CSM_CASSANDRA_TLS_CA_FILE): the image's public roots, right for Keyspaces; "
        "a private CA goes in a file secret (EKS/Swarm) at this path.",
        pattern=r"^(/[A-Za-z0-9._-]+)+$",
    )

    @field_validator("contact_points")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not re.match(r"^[A-Za-z0-9.-]+(:\d{1,5})?$", host):
                raise ValueError(f"{host!r} is not 'host' or 'host:port'")
        return hosts


class NetworkConfig(_Section):
    vpc_id: str | None = _f(
        "vpcId",
        None,
        "Existing VPC; empty = create one (public + private subnets, NAT).",
        pattern=r"^vpc-[0-9a-f]{8,17}$",
    )
    public_subnet_ids: list[str] = _f(
        "publicSubnetIds", [], "Existing VPC: public subnets for the load balancer (>= 2 AZs)."
    )
    private_subnet_ids: list[str] = _f(
        "privateSubnetIds", [], "Existing VPC: private subnets for the tasks (>= 2 AZs in prod)."
    )
    vpc_cidr: str = _f("vpcCidr", "10.40.0.0/16", "New VPC: IPv4 CIDR block (/16 to /24).")
    az_count: int = _f(
        "vpcAzCount", 2, "New VPC: availability zones to span (a load balancer needs at least 2).", ge=2, le=6
    )
    nat_gateways: int = _f(
        "vpcNatGateways", 1, "New VPC: NAT gateways (1 = shared, vpcAzCount = one per AZ).", ge=1, le=6
    )
    ingress_cidrs: list[str] = _f(
        "ingressCidrs", ["0.0.0.0/0"], "CIDRs allowed to reach the load balancer.", min_length=1
    )

    @field_validator("public_subnet_ids", "private_subnet_ids")
    @classmethod
    def _subnets(cls, ids: list[str]) -> list[str]:
        for sid in ids:
            if not re.match(r"^subnet-[0-9a-f]{8,17}$", sid):
                raise ValueError(f"{sid!r} is not a subnet id (subnet-...)")
        if len(set(ids)) != len(ids):
            raise ValueError("lists a subnet twice")
        return ids

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, cidr: str) -> str:
        try:
            net = ipaddress.IPv4Network(cidr)
        except ValueError as exc:
            raise ValueError(f"{cidr!r} is not an IPv4 CIDR block ({exc})") from None
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"prefix must be /16 to /24 (got /{net.prefixlen})")
        return cidr

    @field_validator("ingress_cidrs")
    @classmethod
    def _ingress(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR block") from None
        return cidrs

    @property
    def create_vpc(self) -> bool:
        return self.vpc_id is None


class IngressConfig(_Section):
    certificate_arn: str | None = _f(
        "certificateArn", None, "ACM certificate: HTTPS listener (HTTP redirects to it). Required in prod."
    )
    domain_name: str | None = _f(
        "domainName",
        None,
        "DNS name users reach the service at (for the serviceUrl output and the EKS Ingress host); empty = the load balancer's name.",
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    )
    internal: bool = _f(
        "albInternal", False, "Internal load balancer (in the private subnets) instead of internet-facing."
    )
    ssl_policy: str = _f(
        "albSslPolicy",
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "TLS policy of the HTTPS listener.",
        pattern=r"^ELBSecurityPolicy-[A-Za-z0-9-]+$",
    )
    idle_timeout: int = _f(
        "albIdleTimeout",
        60,
        "Load balancer idle timeout, seconds; the service's HTTP keep-alive (CSM_KEEP_ALIVE_TIMEOUT) is set above it on every target.",
        ge=1,
        le=4000,
    )
    allow_insecure_dev: bool = _f(
        "allowInsecureDev",
        False,
        "Allow an internet-facing listener without TLS (bearer tokens in cleartext): dev/staging only, never prod.",
    )

    @field_validator("certificate_arn")
    @classmethod
    def _acm(cls, arn: str | None) -> str | None:
        if arn is not None and not ACM_ARN.match(arn):
            raise ValueError(f"must be an ACM certificate ARN (got {arn!r})")
        return arn


class AlarmsConfig(_Section):
    emails: list[str] = _f("alarmEmails", [], "E-mail addresses subscribed to the alarm topic.")
    topic_arn: str | None = _f("alarmTopicArn", None, "Existing SNS topic for alarms; empty = create one.")
    error_rate_percent: int = _f(
        "alarm5xxPercent", 5, "Alarm when 5xx responses exceed this percent of requests.", ge=1, le=100
    )
    p99_latency_ms: int = _f(
        "alarmP99LatencyMs", 1000, "Alarm when p99 target response time exceeds this, milliseconds.", ge=10, le=60000
    )
    cpu_percent: int = _f(
        "alarmCpuPercent", 85, "Alarm when average CPU utilisation exceeds this percent.", ge=10, le=100
    )
    memory_percent: int = _f(
        "alarmMemoryPercent", 85, "Alarm when average memory utilisation exceeds this percent.", ge=10, le=100
    )

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        for mail in emails:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$", mail):
                raise ValueError(f"{mail!r} is not an e-mail address")
        return emails

    @field_validator("topic_arn")
    @classmethod
    def _topic(cls, arn: str | None) -> str | None:
        if arn is not None and not SNS_ARN.match(arn):
            raise ValueError(f"must be an SNS topic ARN (got {arn!r})")
        return arn


class EcsConfig(_Section):
    min_healthy_percent: int = _f("ecsMinHealthyPercent", 100, "Deployment minimum healthy percent.", ge=0, le=100)
    max_percent: int = _f("ecsMaxPercent", 200, "Deployment maximum percent.", ge=100, le=400)
    grace_period: int = _f(
        "ecsHealthCheckGracePeriod",
        60,
        "Seconds the service ignores load balancer health checks after a task starts.",
        ge=0,
        le=3600,
    )
    container_insights: Literal["enabled", "enhanced"] = _f(
        "ecsContainerInsights", "enabled", "Container Insights level of the cluster."
    )
    capacity_provider: Literal["FARGATE", "FARGATE_SPOT"] = _f(
        "ecsCapacityProvider", "FARGATE", "Fargate capacity provider."
    )
    enable_execute_command: bool = _f(
        "ecsEnableExecuteCommand", False, "Allow 'aws ecs execute-command' into tasks (not allowed in prod)."
    )


class EksConfig(_Section):
    cluster_mode: Literal["create", "existing"] = _f(
        "eksClusterMode", "create", "Create a cluster with pulumi-eks, or use an existing one."
    )
    cluster_name: str | None = _f(
        "eksClusterName",
        None,
        "Existing cluster's name (required with eksClusterMode existing).",
        pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$",
    )
    kubeconfig: str | None = _f(
        "eksKubeconfig", None, "Existing cluster's kubeconfig (YAML/JSON text; set it as a secret).", secret=True
    )
    kubernetes_version: str = _f(
        "eksKubernetesVersion",
        "1.33",
        "Kubernetes version (new cluster; rendered objects are validated against its schema).",
        pattern=r"^1\.\d{2}$",
    )
    node_mode: Literal["managed", "fargate"] = _f(
        "eksNodeMode", "managed", "New cluster: managed node group or a Fargate profile."
    )
    instance_types: list[str] = _f(
        "eksInstanceTypes",
        ["m7g.xlarge"],
        "Managed node group instance types (Graviton types for arm64); the pods per node they fit, with "
        "eksNodeMaxSize, must hold scalingMaxCount plus a surge pod.",
        min_length=1,
    )
    node_min: int = _f("eksNodeMinSize", 2, "Managed node group minimum size.", ge=1, le=100)
    node_desired: int = _f("eksNodeDesiredSize", 2, "Managed node group desired size.", ge=1, le=100)
    node_max: int = _f(
        "eksNodeMaxSize",
        6,
        "Managed node group maximum size (the cluster autoscaler a created cluster runs adds nodes up to it).",
        ge=1,
        le=100,
    )
    namespace: str = _f(
        "eksNamespace", "csm", "Kubernetes namespace of the service.", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
    )
    identity_mode: Literal["irsa", "pod-identity"] = _f(
        "eksIdentityMode", "irsa", "How the ServiceAccount gets its IAM role: IRSA or EKS Pod Identity."
    )
    install_external_secrets: bool = _f(
        "eksInstallExternalSecrets", True, "Install External Secrets Operator (secretSource aws)."
    )
    ingress: bool = _f("eksIngress", True, "Create an Ingress for the AWS Load Balancer Controller.")
    container_insights: bool = _f("eksContainerInsights", True, "Install the amazon-cloudwatch-observability add-on.")

    @field_validator("instance_types")
    @classmethod
    def _types(cls, types: list[str]) -> list[str]:
        for t in types:
            if not re.match(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", t):
                raise ValueError(f"{t!r} is not an EC2 instance type")
        return types


class KubernetesConfig(_Section):
    kubeconfig: str | None = _f(
        "kubernetesKubeconfig",
        None,
        "target kubernetes: kubeconfig of the cluster (YAML text; set it as a secret).",
        secret=True,
    )
    context: str | None = _f(
        "kubernetesContext", None, "target kubernetes: kubeconfig context to use; empty = its current context."
    )
    namespace: str = _f(
        "kubernetesNamespace",
        "csm",
        "target kubernetes: namespace of the service.",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    )
    version: str = _f(
        "kubernetesVersion",
        "1.33",
        "target kubernetes: the cluster's minor version (Pod Security profile version; objects are validated against its schema).",
        pattern=r"^1\.\d{2}$",
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = _f(
        "kubernetesServiceType",
        "ClusterIP",
        "target kubernetes: type of the service's Service (NodePort or LoadBalancer publish it without an Ingress).",
    )
    node_port: int = _f(
        "kubernetesNodePort",
        0,
        "kubernetesServiceType NodePort: the node port (30000-32767); 0 = the cluster picks one.",
        ge=0,
        le=32767,
    )
    node_address: str | None = _f(
        "kubernetesNodeAddress",
        None,
        "kubernetesServiceType NodePort: the node address users reach, for the serviceUrl output.",
        pattern=r"^[A-Za-z0-9.:-]+$",
    )
    ingress: bool = _f(
        "kubernetesIngress", False, "target kubernetes: create an Ingress (for the cluster's own Ingress controller)."
    )
    ingress_class: str | None = _f(
        "kubernetesIngressClass", None, "kubernetesIngress: ingressClassName; empty = the cluster's default class."
    )
    ingress_tls_secret: str | None = _f(
        "kubernetesIngressTlsSecret",
        None,
        "kubernetesIngress: name of the kubernetes.io/tls Secret in the namespace that serves domainName over HTTPS.",
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
    )
    progress_deadline: int = _f(
        "kubernetesProgressDeadlineSeconds",
        600,
        "target kubernetes: seconds a rollout may go without progress before it (and `pulumi up`) fails; the old pods keep serving.",
        ge=30,
        le=3600,
    )
    secret_store: str | None = _f(
        "kubernetesSecretStore",
        None,
        "target kubernetes with secretSource aws: the External Secrets store the ExternalSecrets read from, 'SecretStore/<name>' (in the namespace) or 'ClusterSecretStore/<name>'.",
        pattern=r"^(SecretStore|ClusterSecretStore)/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
    )


class SwarmConfig(_Section):
    host: str | None = _f(
        "swarmHost", None, "Docker host of a Swarm manager: ssh://user@host, tcp://host:2376 (TLS) or unix:///path."
    )
    tls_ca_cert: str | None = _f("swarmTlsCaCert", None, "tcp:// hosts: CA certificate (PEM).", secret=True)
    tls_cert: str | None = _f("swarmTlsCert", None, "tcp:// hosts: client certificate (PEM).", secret=True)
    tls_key: str | None = _f("swarmTlsKey", None, "tcp:// hosts: client key (PEM).", secret=True)
    stack_name: str = _f("swarmStackName", "csm", "docker stack name.", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    publish_mode: Literal["ingress", "host"] = _f(
        "swarmPublishMode", "ingress", "Port publishing: routing mesh (ingress) or host mode."
    )
    published_port: int = _f("swarmPublishedPort", 8000, "Port published on the Swarm nodes.", ge=1, le=65535)
    endpoint_mode: Literal["vip", "dnsrr"] = _f(
        "swarmEndpointMode", "vip", "Service endpoint mode (dnsrr needs host-mode publishing)."
    )
    overlay_encrypted: bool = _f(
        "swarmOverlayEncrypted", True, "Encrypt the overlay network (IPsec). Required in prod."
    )
    aws_logs: bool = _f("swarmAwsLogs", False, "Send container logs to CloudWatch with Docker's awslogs driver.")
    proxy_image: str | None = _f(
        "swarmProxyImage",
        None,
        "swarmPublishMode host: the HAProxy image (deploy/swarm/proxy, repository@sha256:<digest>) published in front of the replicas.",
    )
    proxy_tls_secret: str | None = _f(
        "swarmProxyTlsSecret",
        None,
        "TLS at the proxy: the secret holding the PEM certificate chain followed by its private key (a Secrets Manager name/ARN or a "
        "Pulumi secret config key, as csm:secretSource says); HAProxy then serves HTTPS only. Required in prod.",
        pattern=r"^[A-Za-z0-9/_+=.@:-]{1,2048}$",
    )
    secret_name_key: str | None = _f(
        "swarmSecretNameKey",
        None,
        "Key of the HMAC-SHA256 that versions Docker secret names (set it with `pulumi config set --secret`, >= 32 random characters); "
        "empty = a plain SHA-256 of the value, allowed in dev only.",
        secret=True,
    )

    @field_validator("proxy_image")
    @classmethod
    def _proxy_image(cls, ref: str | None) -> str | None:
        if ref is not None and not IMAGE_BY_DIGEST.match(ref):
            raise ValueError(f"must be an image reference by digest, 'repository@sha256:<64 hex>' (got {ref!r})")
        return ref

    @field_validator("host")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        if host is not None and not re.match(r"^(ssh://[^\s/]+|tcp://[^\s/]+:\d+|unix:///\S+)$", host):
            raise ValueError(f"must be ssh://user@host, tcp://host:port or unix:///path (got {host!r})")
        return host


SECTIONS: dict[str, type[_Section]] = {
    "general": GeneralConfig,
    "image": ImageConfig,
    "service": ServiceConfig,
    "health": HealthConfig,
    "scaling": ScalingConfig,
    "secrets": SecretsConfig,
    "cassandra": CassandraConfig,
    "network": NetworkConfig,
    "ingress": IngressConfig,
    "alarms": AlarmsConfig,
    "ecs": EcsConfig,
    "eks": EksConfig,
    "kubernetes": KubernetesConfig,
    "swarm": SwarmConfig,
}

# flat key -> (section, python field name)
KEYS: dict[str, tuple[str, str]] = {
    field.alias or name: (section, name)
    for section, model in SECTIONS.items()
    for name, field in model.model_fields.items()
}


# keys whose values are secrets: set with `pulumi config set --secret`
SECRET_KEYS: frozenset[str] = frozenset(
    field.alias or name
    for model in SECTIONS.values()
    for name, field in model.model_fields.items()
    if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret")
)


# --------------------------------------------------------------------------- cross-key rules

RuleFn = Callable[["StackConfig"], Iterable[Problem]]
RULES: list[tuple[tuple[str, ...], RuleFn]] = []


def rule(*keys: str) -> Callable[[RuleFn], RuleFn]:
    """Register a cross-key rule; it is skipped when one of ``keys`` already failed its own check."""

    def register(fn: RuleFn) -> RuleFn:
        RULES.append((keys, fn))
        return fn

    return register


def P(key: str, reason: str) -> Problem:
    return Problem(qualify(key), reason)


@rule("target", AWS_REGION_KEY, "cassandraMode", "swarmAwsLogs", "imageRef", "imageRegistry", "secretSource")
def _region_needed(c: StackConfig) -> Iterable[Problem]:
    ecr_build = c.image.ref is None and c.image.registry is None
    aws_secrets = c.target == "swarm" and c.secrets.source == "aws" and bool(c.secrets.items)
    needs = (
        c.target in ("ecs", "eks") or c.cassandra.mode == "keyspaces" or c.swarm.aws_logs or ecr_build or aws_secrets
    )
    if needs and c.aws_region is None:
        yield P(AWS_REGION_KEY, "is required (AWS resources are created for this stack)")


# Where each count means something: serviceDesiredCount is the count on Swarm and the starting count on ECS;
# scalingMin/MaxCount bound an autoscaler, which Swarm does not have.
DESIRED_COUNT_TARGETS = ("ecs", "swarm")
AUTOSCALED_TARGETS = ("ecs", "eks", "kubernetes")


@rule("environment", "target", "serviceDesiredCount", "scalingMinCount")
def _prod_two_tasks(c: StackConfig) -> Iterable[Problem]:
    if c.prod:
        if c.target in DESIRED_COUNT_TARGETS and c.service.desired_count < 2:
            yield P("serviceDesiredCount", f"must be >= 2 in prod (got {c.service.desired_count})")
        if c.target in AUTOSCALED_TARGETS and c.scaling.min_count < 2:
            yield P(
                "scalingMinCount",
                f"must be >= 2 in prod so autoscaling never drops below two tasks (got {c.scaling.min_count})",
            )


@rule("environment", "target", "vpcId", "privateSubnetIds", "vpcAzCount")
def _prod_two_azs(c: StackConfig) -> Iterable[Problem]:
    if c.prod and c.target in ("ecs", "eks") and not c.network.create_vpc and len(c.network.private_subnet_ids) < 2:
        yield P(
            "privateSubnetIds",
            f"prod needs private subnets in >= 2 availability zones (got {len(c.network.private_subnet_ids)})",
        )


@rule("environment", "target", "certificateArn", "eksIngress")
def _prod_https(c: StackConfig) -> Iterable[Problem]:
    if c.prod and c.target in ("ecs", "eks") and c.ingress.certificate_arn is None:
        yield P("certificateArn", "is required in prod: the service is served over HTTPS only")
    if c.prod and c.target == "eks" and not c.eks.ingress:
        yield P("eksIngress", "must be true in prod (HTTPS is terminated at the ALB Ingress)")


@rule("environment", "deletionProtection")
def _prod_deletion_protection(c: StackConfig) -> Iterable[Problem]:
    if c.prod and not c.general.deletion_protection:
        yield P("deletionProtection", "must be true in prod")


@rule("environment", "imageScan", "imageScanPolicy", "imageRef")
def _prod_scan(c: StackConfig) -> Iterable[Problem]:
    if c.prod and c.image.ref is None:
        if not c.image.scan:
            yield P("imageScan", "must be true in prod: images are scanned before they are pushed")
        elif c.image.scan_policy != "prod":
            yield P("imageScanPolicy", "must be 'prod' in prod")


@rule("environment", "cassandraMode", "cassandraTls")
def _prod_cassandra_tls(c: StackConfig) -> Iterable[Problem]:
    if c.prod and c.cassandra.mode == "external" and not c.cassandra.tls:
        yield P("cassandraTls", "must be true in prod")


@rule("environment", "ecsEnableExecuteCommand", "target")
def _prod_no_exec(c: StackConfig) -> Iterable[Problem]:
    if c.prod and c.target == "ecs" and c.ecs.enable_execute_command:
        yield P("ecsEnableExecuteCommand", "must be false in prod")


@rule("environment", "target", "swarmOverlayEncrypted")
def _prod_swarm_overlay(c: StackConfig) -> Iterable[Problem]:
    if c.prod and c.target == "swarm" and not c.swarm.overlay_encrypted:
        yield P("swarmOverlayEncrypted", "must be true in prod")


@rule("target", "scalingMinCount", "scalingMaxCount", "serviceDesiredCount")
def _scaling_bounds(c: StackConfig) -> Iterable[Problem]:
    s = c.scaling
    if c.target not in AUTOSCALED_TARGETS:
        return
    if s.min_count > s.max_count:
        yield P("scalingMaxCount", f"must be >= scalingMinCount ({s.max_count} < {s.min_count})")
    elif c.target == "ecs" and not s.min_count <= c.service.desired_count <= s.max_count:
        yield P(
            "serviceDesiredCount",
            f"must lie within scalingMinCount..scalingMaxCount ({s.min_count}..{s.max_count}, got {c.service.desired_count})",
        )


@rule("target", "serviceCpu", "serviceMemory")
def _fargate_size(c: StackConfig) -> Iterable[Problem]:
    if c.target != "ecs":
        return
    cpu, mem = c.service.cpu, c.service.memory
    if cpu not in FARGATE_SIZES:
        yield P("serviceCpu", f"must be a Fargate CPU size {sorted(FARGATE_SIZES)} (got {cpu})")
    elif mem not in FARGATE_SIZES[cpu]:
        sizes = FARGATE_SIZES[cpu]
        yield P(
            "serviceMemory",
            f"is not valid with serviceCpu {cpu} on Fargate: {sizes[0]}..{sizes[-1]} MiB in steps of {sizes[1] - sizes[0] if len(sizes) > 1 else sizes[0]} (got {mem})",
        )


@rule("healthCheckTimeout", "healthCheckInterval")
def _health_timeout(c: StackConfig) -> Iterable[Problem]:
    if c.health.timeout >= c.health.interval:
        yield P(
            "healthCheckTimeout",
            f"must be shorter than healthCheckInterval ({c.health.timeout} >= {c.health.interval})",
        )


@rule("ecsHealthCheckGracePeriod", "healthCheckStartPeriod", "target")
def _grace(c: StackConfig) -> Iterable[Problem]:
    if c.target == "ecs" and c.ecs.grace_period < c.health.start_period:
        yield P(
            "ecsHealthCheckGracePeriod",
            f"must be >= healthCheckStartPeriod ({c.ecs.grace_period} < {c.health.start_period})",
        )


@rule("ecsMinHealthyPercent", "ecsMaxPercent", "serviceDesiredCount", "target")
def _deployment_room(c: StackConfig) -> Iterable[Problem]:
    if c.target != "ecs":
        return
    n = c.service.desired_count
    lo = -(-c.ecs.min_healthy_percent * n // 100)  # ceil
    hi = c.ecs.max_percent * n // 100
    if hi - lo < 1:
        yield P(
            "ecsMaxPercent",
            f"leaves no room to replace a task ({n} tasks: at least {lo} healthy, at most {hi} running); raise it or lower ecsMinHealthyPercent",
        )


@rule("imagePlatforms", "serviceArchitecture", "imageRef")
def _platform_covers_arch(c: StackConfig) -> Iterable[Problem]:
    needed = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}[c.service.architecture]
    if c.image.ref is None and needed not in c.image.platforms:
        yield P("imagePlatforms", f"must include {needed}: serviceArchitecture is {c.service.architecture}")


@rule("secrets", "secretSource", "target")
def _secret_targets(c: StackConfig) -> Iterable[Problem]:
    if c.target == "ecs":
        if c.secrets.source != "aws":
            yield P(
                "secretSource", "must be 'aws' with target ecs: ECS injects secrets from Secrets Manager (valueFrom)"
            )
        files = [e.path for e in c.secrets.entries if e.path]
        if files:
            yield P(
                "secrets",
                f"ECS cannot mount secrets as files ({', '.join(files)}); feed an environment variable instead",
            )
    for index, entry in enumerate(c.secrets.entries):
        if c.secrets.source == "pulumi":
            if entry.is_arn or not CONFIG_KEY.match(entry.ref):
                yield P(
                    "secrets", f"item {index}: with secretSource pulumi, {entry.ref!r} must name a Pulumi config key"
                )
            elif entry.ref in KEYS:
                yield P("secrets", f"item {index}: {entry.ref} is a settings key, not a secret value")
            elif qualify(entry.ref) not in c.present_keys:
                yield P(
                    "secrets",
                    f"item {index}: Pulumi secret config key {qualify(entry.ref)} is not set (pulumi config set --secret {entry.ref} ...)",
                )


@rule("secrets", "target")
def _required_secrets(c: StackConfig) -> Iterable[Problem]:
    if c.target != "ecs":  # EKS/Swarm deliver secrets their own ways; their rules live with them
        return
    fed_env = {e.env for e in c.secrets.entries if e.env}
    fed_files = {e.path for e in c.secrets.entries if e.path}
    for setting in REQUIRED_SECRET_SETTINGS:
        env, path = f"CSM_{setting.upper()}", f"{IMAGE_SECRETS_DIR}/csm_{setting}"
        if env not in fed_env and path not in fed_files:
            yield P("secrets", f"must feed {env} (or the file {path}): the service does not start without it")


@rule("serviceEnv", "secrets")
def _env_secret_clash(c: StackConfig) -> Iterable[Problem]:
    clash = set(c.service.env_map) & {e.env for e in c.secrets.entries if e.env}
    if clash:
        yield P("serviceEnv", f"{', '.join(sorted(clash))} is also fed by csm:secrets")


@rule("cassandraMode", "cassandraContactPoints", "cassandraLocalDc", "cassandraTls")
def _cassandra(c: StackConfig) -> Iterable[Problem]:
    cas = c.cassandra
    if cas.mode == "external":
        if not cas.contact_points:
            yield P("cassandraContactPoints", "needs at least one host with cassandraMode external")
        if cas.local_dc is None:
            yield P("cassandraLocalDc", "is required with cassandraMode external")
    else:
        if cas.contact_points:
            yield P(
                "cassandraContactPoints", "must be empty with cassandraMode keyspaces (the regional endpoint is used)"
            )
        if not cas.tls:
            yield P("cassandraTls", "must be true with cassandraMode keyspaces (Keyspaces only accepts TLS)")


@rule("vpcId", "publicSubnetIds", "privateSubnetIds", "albInternal", "target")
def _network(c: StackConfig) -> Iterable[Problem]:
    n = c.network
    if n.create_vpc:
        for key, ids in (("publicSubnetIds", n.public_subnet_ids), ("privateSubnetIds", n.private_subnet_ids)):
            if ids:
                yield P(key, "only applies with an existing vpcId (leave it empty to create the VPC)")
    elif c.target in ("ecs", "eks"):
        if not n.private_subnet_ids:
            yield P("privateSubnetIds", "is required with an existing vpcId")
        if not c.ingress.internal and len(n.public_subnet_ids) < 2:
            yield P(
                "publicSubnetIds",
                f"needs subnets in >= 2 availability zones for the load balancer (got {len(n.public_subnet_ids)})",
            )
        if c.ingress.internal and len(n.private_subnet_ids) < 2:
            yield P("privateSubnetIds", "needs subnets in >= 2 availability zones for the internal load balancer")
        overlap = set(n.public_subnet_ids) & set(n.private_subnet_ids)
        if overlap:
            yield P(
                "privateSubnetIds",
                f"{', '.join(sorted(overlap))} is listed as public too: tasks must run in private subnets",
            )


@rule("vpcNatGateways", "vpcAzCount")
def _nat(c: StackConfig) -> Iterable[Problem]:
    if c.network.nat_gateways > c.network.az_count:
        yield P("vpcNatGateways", f"must be <= vpcAzCount ({c.network.nat_gateways} > {c.network.az_count})")


@rule("alarmEmails", "alarmTopicArn")
def _alarm_target(c: StackConfig) -> Iterable[Problem]:
    if c.alarms.emails and c.alarms.topic_arn:
        yield P("alarmEmails", "subscribe addresses to your own alarmTopicArn instead (both are set)")


@rule("target", "eksClusterMode", "eksClusterName", "eksKubeconfig")
def _eks_existing(c: StackConfig) -> Iterable[Problem]:
    if c.target != "eks":
        return
    if c.eks.cluster_mode == "existing":
        if c.eks.cluster_name is None:
            yield P("eksClusterName", "is required with eksClusterMode existing")
        if c.eks.kubeconfig is None:
            yield P("eksKubeconfig", "is required with eksClusterMode existing")


@rule("target", "eksClusterMode", "eksNodeMode", "eksInstanceTypes", "serviceArchitecture")
def _eks_arch(c: StackConfig) -> Iterable[Problem]:
    if c.target == "eks" and c.eks.cluster_mode == "create" and c.eks.node_mode == "managed":
        arm = c.service.architecture == "arm64"
        wrong = [t for t in c.eks.instance_types if bool(GRAVITON_TYPE.match(t)) != arm]
        if wrong:
            kind = "Graviton (arm64)" if arm else "x86_64"
            yield P(
                "eksInstanceTypes",
                f"{', '.join(wrong)} do not match serviceArchitecture {c.service.architecture}: use {kind} instance types",
            )


@rule("target", "eksNodeMinSize", "eksNodeDesiredSize", "eksNodeMaxSize", "environment")
def _eks_nodes(c: StackConfig) -> Iterable[Problem]:
    if c.target != "eks":
        return
    e = c.eks
    if not e.node_min <= e.node_desired <= e.node_max:
        yield P(
            "eksNodeDesiredSize",
            f"must lie within eksNodeMinSize..eksNodeMaxSize ({e.node_min}..{e.node_max}, got {e.node_desired})",
        )
    if c.prod and e.cluster_mode == "create" and e.node_mode == "managed" and e.node_min < 2:
        yield P("eksNodeMinSize", "must be >= 2 in prod (pods spread over two nodes in two zones)")


@rule("target", "eksClusterMode", "eksNodeMode", "serviceArchitecture", "eksIdentityMode", "eksContainerInsights")
def _eks_fargate(c: StackConfig) -> Iterable[Problem]:
    # What EKS on Fargate cannot do: arm64 pods, the Pod Identity agent and add-on DaemonSets.
    if c.target != "eks" or c.eks.cluster_mode != "create" or c.eks.node_mode != "fargate":
        return
    if c.service.architecture != "x86_64":
        yield P("serviceArchitecture", "must be x86_64 with eksNodeMode fargate (EKS Fargate runs x86_64 pods only)")
    if c.eks.identity_mode != "irsa":
        yield P(
            "eksIdentityMode", "must be irsa with eksNodeMode fargate (EKS Pod Identity is not available on Fargate)"
        )
    if c.eks.container_insights:
        yield P(
            "eksContainerInsights",
            "must be false with eksNodeMode fargate (the observability add-on runs as DaemonSets, which Fargate does not run)",
        )


@rule("target", "eksClusterMode", "eksNodeMode", "environment")
def _eks_fargate_network_policies(c: StackConfig) -> Iterable[Problem]:
    # "Network policies are not supported for Pods that run on Fargate": the default-deny policies would be
    # accepted and never enforced. https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html
    if c.prod and c.target == "eks" and c.eks.cluster_mode == "create" and c.eks.node_mode == "fargate":
        yield P(
            "eksNodeMode",
            "must be managed in prod: EKS does not enforce NetworkPolicies for Pods on Fargate, so the service's "
            "default-deny policies would silently not apply",
        )


@rule("target", "eksIdentityMode", "eksInstallExternalSecrets", "secretSource", "secrets")
def _eks_pod_identity_eso(c: StackConfig) -> Iterable[Problem]:
    e = c.eks
    if (
        c.target == "eks"
        and e.identity_mode == "pod-identity"
        and c.secrets.source == "aws"
        and c.secrets.items
        and not e.install_external_secrets
    ):
        yield P(
            "eksInstallExternalSecrets",
            "must be true with eksIdentityMode pod-identity and secretSource aws: the service's role trusts "
            "the External Secrets controller this stack installs; with a pre-installed operator use eksIdentityMode irsa",
        )


@rule("target", "kubernetesKubeconfig")
def _kubernetes_cluster(c: StackConfig) -> Iterable[Problem]:
    if c.target == "kubernetes" and c.kubernetes.kubeconfig is None:
        yield P(
            "kubernetesKubeconfig",
            'is required with target kubernetes (pulumi config set --secret kubernetesKubeconfig "$(cat kubeconfig)")',
        )


@rule("target", "kubernetesServiceType", "kubernetesNodePort", "kubernetesNodeAddress")
def _kubernetes_node_port(c: StackConfig) -> Iterable[Problem]:
    k = c.kubernetes
    if c.target != "kubernetes":
        return
    if k.service_type != "NodePort":
        for key, value in (("kubernetesNodePort", k.node_port), ("kubernetesNodeAddress", k.node_address)):
            if value:
                yield P(key, f"only applies with kubernetesServiceType NodePort (it is {k.service_type})")
    elif k.node_port and not 30000 <= k.node_port <= 32767:
        # https://kubernetes.io/docs/concepts/services-networking/service/#type-nodeport (default --service-node-port-range)
        yield P(
            "kubernetesNodePort", f"must lie in the default node port range 30000-32767, or be 0 (got {k.node_port})"
        )


@rule(
    "target",
    "kubernetesIngress",
    "kubernetesIngressTlsSecret",
    "kubernetesIngressClass",
    "domainName",
    "environment",
    "kubernetesServiceType",
)
def _kubernetes_ingress(c: StackConfig) -> Iterable[Problem]:
    k = c.kubernetes
    if c.target != "kubernetes":
        return
    if not k.ingress:
        for key, value in (
            ("kubernetesIngressClass", k.ingress_class),
            ("kubernetesIngressTlsSecret", k.ingress_tls_secret),
        ):
            if value:
                yield P(key, "only applies with kubernetesIngress true")
    elif k.ingress_tls_secret and c.ingress.domain_name is None:
        yield P("domainName", "is required with kubernetesIngressTlsSecret (the Ingress serves that host over TLS)")
    if c.prod:
        if not k.ingress or k.ingress_tls_secret is None:
            yield P(
                "kubernetesIngressTlsSecret",
                "is required in prod, with kubernetesIngress true: the service is served over HTTPS only",
            )
        if k.service_type != "ClusterIP":
            yield P(
                "kubernetesServiceType",
                f"must be ClusterIP in prod (got {k.service_type}): {k.service_type} publishes plain HTTP beside the TLS Ingress",
            )


@rule("target", "secretSource", "secrets", "kubernetesSecretStore")
def _kubernetes_secrets(c: StackConfig) -> Iterable[Problem]:
    if c.target != "kubernetes":
        return
    uses_store = c.secrets.source == "aws" and bool(c.secrets.items)
    if uses_store and c.kubernetes.secret_store is None:
        yield P(
            "kubernetesSecretStore",
            "is required with target kubernetes and secretSource aws: the ExternalSecrets read from a store you run",
        )
    if not uses_store and c.kubernetes.secret_store is not None:
        yield P("kubernetesSecretStore", "only applies with secretSource aws and csm:secrets set")


@rule("imageRegistry", "imageRegistryUsername", "imageRegistryPassword", "imageRef")
def _image_registry(c: StackConfig) -> Iterable[Problem]:
    i = c.image
    if i.registry is None:
        for key, value in (
            ("imageRegistryUsername", i.registry_username),
            ("imageRegistryPassword", i.registry_password),
        ):
            if value:
                yield P(key, "only applies with imageRegistry (ECR logins come from the AWS credentials)")
    elif (i.registry_username is None) != (i.registry_password is None):
        yield P(
            "imageRegistryPassword" if i.registry_password is None else "imageRegistryUsername",
            "imageRegistryUsername and imageRegistryPassword go together",
        )


@rule("target", "swarmHost", "swarmTlsCaCert", "swarmTlsCert", "swarmTlsKey")
def _swarm_host(c: StackConfig) -> Iterable[Problem]:
    if c.target != "swarm":
        return
    if c.swarm.host is None:
        yield P("swarmHost", "is required with target swarm")
    elif c.swarm.host.startswith("tcp://"):
        for key, value in (
            ("swarmTlsCaCert", c.swarm.tls_ca_cert),
            ("swarmTlsCert", c.swarm.tls_cert),
            ("swarmTlsKey", c.swarm.tls_key),
        ):
            if value is None:
                yield P(key, "is required for a tcp:// swarmHost (the Docker API is only reached over TLS)")


@rule("target", "swarmEndpointMode", "swarmPublishMode")
def _swarm_dnsrr(c: StackConfig) -> Iterable[Problem]:
    if c.target == "swarm" and c.swarm.endpoint_mode == "dnsrr" and c.swarm.publish_mode == "ingress":
        yield P(
            "swarmEndpointMode",
            "dnsrr cannot publish ports through the ingress routing mesh; set swarmPublishMode host",
        )


@rule("target", "swarmPublishMode", "swarmProxyImage")
def _swarm_proxy(c: StackConfig) -> Iterable[Problem]:
    if c.target == "swarm" and c.swarm.publish_mode == "host" and c.swarm.proxy_image is None:
        yield P(
            "swarmProxyImage",
            "is required with swarmPublishMode host (the proxy publishes the port and balances over the replicas)",
        )


@rule("target", "ecsCapacityProvider", "serviceArchitecture")
def _fargate_spot_arch(c: StackConfig) -> Iterable[Problem]:
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html
    if c.target == "ecs" and c.ecs.capacity_provider == "FARGATE_SPOT" and c.service.architecture != "x86_64":
        yield P(
            "ecsCapacityProvider",
            "FARGATE_SPOT cannot run serviceArchitecture arm64: \"Linux tasks with the ARM64 architecture don't support "
            'the Fargate Spot capacity provider. Fargate Spot only supports Linux tasks with the X86_64 architecture." (AWS ECS docs, '
            "fargate-capacity-providers); use FARGATE, or serviceArchitecture x86_64",
        )


@rule("target", "imageRef", "imageRepositoryCredentials")
def _private_registry(c: StackConfig) -> Iterable[Problem]:
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/private-auth.html
    ref, creds = c.image.ref, c.image.repository_credentials
    if c.target != "ecs":
        if creds is not None:
            yield P("imageRepositoryCredentials", "only applies with target ecs")
        return
    if ref is not None and not ECR_IMAGE.match(ref) and creds is None:
        yield P(
            "imageRepositoryCredentials",
            f"is required: imageRef {ref.split('@')[0]} is not in ECR, and Fargate pulls a private registry's "
            'image only with repositoryCredentials ("private registry authentication for tasks using AWS Secrets Manager"); '
            "or copy the release into ECR and deploy that digest",
        )
    if creds is not None and (ref is None or ECR_IMAGE.match(ref)):
        yield P(
            "imageRepositoryCredentials",
            "only applies to an imageRef outside ECR (ECR images are pulled with the execution role)",
        )


@rule(
    "target",
    "environment",
    "albInternal",
    "certificateArn",
    "eksIngress",
    "allowInsecureDev",
    "swarmProxyTlsSecret",
    "kubernetesIngress",
    "kubernetesIngressTlsSecret",
    "kubernetesServiceType",
)
def _tls_everywhere(c: StackConfig) -> Iterable[Problem]:
    # Bearer tokens must not cross the internet in cleartext.
    if c.prod and c.ingress.allow_insecure_dev:
        yield P("allowInsecureDev", "must be false in prod")
        return
    if c.ingress.allow_insecure_dev:
        return
    load_balanced = c.target == "ecs" or (c.target == "eks" and c.eks.ingress)
    if load_balanced and not c.ingress.internal and c.ingress.certificate_arn is None:
        yield P(
            "certificateArn",
            "is required for an internet-facing load balancer (albInternal false): without it the listener is "
            "HTTP and bearer tokens travel in cleartext; set certificateArn, albInternal true, or allowInsecureDev true (not in prod)",
        )
    if c.target == "swarm" and c.swarm.proxy_tls_secret is None:
        yield P(
            "swarmProxyTlsSecret",
            "is required: without it the published port is HTTP and bearer tokens travel in cleartext; "
            "set it (TLS at the proxy, swarmPublishMode host), or allowInsecureDev true (not in prod)",
        )
    k = c.kubernetes
    if c.target == "kubernetes":
        if k.ingress and k.ingress_tls_secret is None:
            yield P(
                "kubernetesIngressTlsSecret",
                "is required with kubernetesIngress: without it the Ingress serves HTTP and bearer tokens "
                "travel in cleartext; or set allowInsecureDev true (not in prod)",
            )
        if k.service_type != "ClusterIP":
            yield P(
                "kubernetesServiceType",
                f"{k.service_type} publishes the service's plain HTTP outside the cluster: use ClusterIP behind a "
                "TLS Ingress, or set allowInsecureDev true (not in prod)",
            )


@rule("target", "swarmProxyTlsSecret", "swarmPublishMode", "secrets", "secretSource")
def _swarm_proxy_tls(c: StackConfig) -> Iterable[Problem]:
    ref = c.swarm.proxy_tls_secret
    if c.target != "swarm" or ref is None:
        return
    if c.swarm.publish_mode != "host":
        yield P(
            "swarmProxyTlsSecret",
            "needs swarmPublishMode host: TLS is terminated at the proxy, which only runs in host mode",
        )
    if c.secrets.source == "pulumi":
        if not CONFIG_KEY.match(ref) or ref in KEYS:
            yield P("swarmProxyTlsSecret", f"with secretSource pulumi, {ref!r} must name a Pulumi secret config key")
        elif qualify(ref) not in c.present_keys:
            yield P(
                "swarmProxyTlsSecret",
                f"Pulumi secret config key {qualify(ref)} is not set (pulumi config set --secret {ref} < cert-and-key.pem)",
            )


@rule("target", "environment", "swarmSecretNameKey")
def _swarm_secret_name_key(c: StackConfig) -> Iterable[Problem]:
    if c.target != "swarm":
        return
    key = c.swarm.secret_name_key
    if key is None:
        if c.general.environment != "dev":
            yield P(
                "swarmSecretNameKey",
                "is required outside dev: without it Docker secret names carry an unsalted hash of each value, "
                'which confirms a guessed password offline (pulumi config set --secret swarmSecretNameKey "$(openssl rand -hex 32)")',
            )
    elif key != SECRET_PLACEHOLDER and len(key) < 32:
        yield P("swarmSecretNameKey", f"must be at least 32 characters (got {len(key)})")


@rule(
    "target",
    "eksClusterMode",
    "eksNodeMode",
    "eksInstanceTypes",
    "eksNodeMaxSize",
    "serviceCpu",
    "serviceMemory",
    "scalingMaxCount",
    "eksContainerInsights",
)
def _eks_capacity(c: StackConfig) -> Iterable[Problem]:
    # Pods per node from the node's allocatable resources (EKS AMI kube-reserved and eviction threshold) less the DaemonSets,
    # and the pod's requests (= serviceCpu in millicores, serviceMemory): https://docs.aws.amazon.com/eks/latest/best-practices/node_and_pod_capacity.html
    # A rollout surges one pod (maxSurge 1) above scalingMaxCount; the cluster autoscaler adds nodes up to eksNodeMaxSize.
    if c.target != "eks" or c.eks.cluster_mode != "create" or c.eks.node_mode != "managed":
        return
    cpu_m = c.service.cpu * 1000 // 1024
    mem = c.service.memory
    fits = {t: pods_per_node(t, cpu_m, mem, c.eks.container_insights) for t in c.eks.instance_types}
    known = {t: n for t, n in fits.items() if n is not None}
    if not known:
        return
    smallest, per_node = min(known.items(), key=lambda kv: kv[1])
    if per_node < 1:
        yield P(
            "eksInstanceTypes",
            f"a pod (requests {cpu_m}m CPU, {mem}Mi) does not fit on {smallest} once the node's reserved resources "
            "and the DaemonSets are taken: use a larger instance type or lower serviceCpu/serviceMemory",
        )
        return
    pods = c.scaling.max_count + 1
    nodes = -(-pods // per_node)
    if nodes > c.eks.node_max:
        yield P(
            "eksNodeMaxSize",
            f"must be >= {nodes}: {smallest} fits {per_node} pod(s) of {cpu_m}m CPU/{mem}Mi, and scalingMaxCount "
            f"{c.scaling.max_count} plus one surge pod need {pods} (got {c.eks.node_max})",
        )


# --------------------------------------------------------------------------- the model


class StackConfig(BaseModel):
    """The whole stack config. Build it with ``StackConfig.load`` / ``from_pulumi``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stack: str = ""
    aws_region: str | None = None
    present_keys: frozenset[str] = frozenset()  # every key set in the stack (to check pulumi secret refs)
    general: GeneralConfig
    image: ImageConfig = ImageConfig()
    service: ServiceConfig = ServiceConfig()
    health: HealthConfig = HealthConfig()
    scaling: ScalingConfig = ScalingConfig()
    secrets: SecretsConfig = SecretsConfig()
    cassandra: CassandraConfig = CassandraConfig()
    network: NetworkConfig = NetworkConfig()
    ingress: IngressConfig = IngressConfig()
    alarms: AlarmsConfig = AlarmsConfig()
    ecs: EcsConfig = EcsConfig()
    eks: EksConfig = EksConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    swarm: SwarmConfig = SwarmConfig()

    @property
    def target(self) -> str:
        return self.general.target

    @property
    def prod(self) -> bool:
        return self.general.environment == "prod"

    @property
    def name(self) -> str:
        return self.general.service_name

    @property
    def image_repository(self) -> str:
        """The ECR repository name: csm:imageRepository, else '<serviceName>-<stack>' (unique per stack in one account)."""
        return self.image.repository or per_stack(self.name, self.stack)

    @property
    def pulumi_secret_keys(self) -> list[str]:
        """Config keys holding secret values (secretSource pulumi), to read with require_secret."""
        return [e.ref for e in self.secrets.entries] if self.secrets.source == "pulumi" else []

    # ---- parsing

    @classmethod
    def load(cls, values: Mapping[str, Any], stack: str = "", secret_keys: Iterable[str] | None = None) -> StackConfig:
        """``secret_keys``: the keys set as secrets, when known (the engine's, or a stack file's where
        an encrypted value reads as ``SECRET_PLACEHOLDER``); secret-only keys set otherwise are refused."""
        problems: list[Problem] = [*_plaintext_secrets(values, secret_keys)] if secret_keys is not None else []
        sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        region: Any = None
        present: set[str] = set()
        for raw_key, value in values.items():
            namespace, _, key = raw_key.rpartition(":")
            full = qualify(raw_key)
            present.add(full)
            if full == AWS_REGION_KEY:
                region = value
                continue
            if namespace not in ("", NAMESPACE):
                continue  # other providers' config (aws:profile, ...) is not ours to check
            if key not in KEYS:
                continue  # checked below, after we know which keys are pulumi secret refs
            section, name = KEYS[key]
            field = SECTIONS[section].model_fields[name]
            if isinstance(value, str) and typing.get_origin(field.annotation) is list:
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    problems.append(Problem(full, f"must be a list (JSON array) of strings ({exc.msg})"))
                    continue
            sections[section][key] = value

        bad: set[str] = {p.key for p in problems}
        parsed: dict[str, Any] = {}  # section name -> its own model
        for section, model in SECTIONS.items():
            data = {k: v for k, v in sections[section].items() if qualify(k) not in bad}
            try:
                parsed[section] = model.model_validate(data)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = err["loc"]
                    key = qualify(str(loc[0])) if loc else f"{NAMESPACE}:{section}"
                    bad.add(key)
                    problems.append(Problem(key, _reason(err)))
                retry = {k: v for k, v in data.items() if qualify(k) not in bad}
                try:
                    parsed[section] = model.model_validate(retry)
                except ValidationError:
                    parsed[section] = None  # a required key is missing or bad

        if region is not None and not (isinstance(region, str) and REGION.match(region)):
            problems.append(Problem(AWS_REGION_KEY, f"is not an AWS region name (got {region!r})"))
            bad.add(AWS_REGION_KEY)
            region = None

        if parsed.get("general") is None:
            raise ConfigError(problems, stack)
        cfg = cls(stack=stack, aws_region=region, present_keys=frozenset(present), **parsed)

        secret_refs = {qualify(r) for r in cfg.pulumi_secret_keys}
        for full in sorted(present):
            namespace, _, key = full.rpartition(":")
            if namespace == NAMESPACE and key not in KEYS and full not in secret_refs:
                hint = difflib.get_close_matches(key, KEYS, n=1)
                problems.append(
                    Problem(full, "is not a known key" + (f"; did you mean {qualify(hint[0])}?" if hint else ""))
                )

        for keys, check in RULES:
            if not any(qualify(k) in bad for k in keys):
                problems.extend(check(cfg))
        if problems:
            raise ConfigError(problems, stack)
        return cfg

    @classmethod
    def from_pulumi(cls) -> StackConfig:
        """Parse the running program's (or the mocks') config."""
        import pulumi
        from pulumi.runtime import config as runtime_config

        values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
        secret_keys = [k for k in values if runtime_config.is_config_secret(k)]
        return cls.load(values, stack=pulumi.get_stack(), secret_keys=secret_keys)


def _plaintext_secrets(values: Mapping[str, Any], secret_keys: Iterable[str]) -> Iterable[Problem]:
    # Pulumi.yaml cannot mark these keys `secret: true` (the engine then rejects their "" default),
    # so the model checks that a value given for one is encrypted.
    from components.stackfiles import SECRET_PLACEHOLDER

    secret = {qualify(k) for k in secret_keys}
    for raw_key, value in values.items():
        full = qualify(raw_key)
        namespace, _, key = full.rpartition(":")
        if (
            namespace != NAMESPACE
            or key not in SECRET_KEYS
            or value in ("", None)
            or value == SECRET_PLACEHOLDER
            or full in secret
        ):
            continue
        yield Problem(
            full, f"must be set as a secret (pulumi config set --secret {key} ...): it is stored in plaintext"
        )


def _reason(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "missing":
        return "is required"
    loc = err["loc"]
    if len(loc) > 1:
        msg = f"item {loc[1]}: {msg}"
    if "input" in err and err["type"] not in ("value_error",) and not isinstance(err["input"], (dict,)):
        msg = f"{msg} (got {err['input']!r})"
    return msg


# --------------------------------------------------------------------------- Pulumi.yaml


def pulumi_type(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin is list:
        return {"type": "array", "items": {"type": "string"}}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    return {"type": "string"}


def pulumi_project_config() -> dict[str, dict[str, Any]]:
    """The ``config:`` block of Pulumi.yaml, generated from the model."""
    out: dict[str, dict[str, Any]] = {}
    for model in SECTIONS.values():
        for name, field in model.model_fields.items():
            decl: dict[str, Any] = pulumi_type(field.annotation)
            description = field.description or ""
            args = typing.get_args(field.annotation)
            literals = [a for a in args if isinstance(a, str)]
            if typing.get_origin(field.annotation) is Literal:
                description += f" One of: {', '.join(literals)}."
            decl["description"] = description
            if field.alias in SECRET_KEYS:
                # Not `secret: true`: the engine refuses that with a default, and these keys are optional.
                decl["description"] = description + " Set it as a secret (pulumi config set --secret)."
            if not field.is_required():
                default = field.default
                decl["default"] = "" if default is None else list(default) if isinstance(default, list) else default
            out[field.alias or name] = decl
    return out


PULUMI_YAML_HEADER = """\
# Generated by `python -m components.config pulumi-yaml > Pulumi.yaml` from components/config.py
# (a unit test keeps the two equal). Every key: type, default, description. Keys without a
# default are required; optional strings default to "" (= not set).
name: csm
description: Cassandra Security Manager - build, scan and push the image, deploy it to ECS Fargate, EKS or Docker Swarm
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: .venv
config:
"""


def render_pulumi_yaml() -> str:
    import yaml

    decls = pulumi_project_config()
    parts = [PULUMI_YAML_HEADER]
    for section, model in SECTIONS.items():
        block = {f.alias or name: decls[f.alias or name] for name, f in model.model_fields.items()}
        text = yaml.safe_dump(block, sort_keys=False, width=1000)
        parts.append(f"  # --- {section}\n" + "".join(f"  {line}\n" for line in text.splitlines()))
    return "".join(parts)


def _markdown_default(decl: dict[str, Any]) -> str:
    if "default" not in decl:
        return "*(required)*"
    default = decl["default"]
    if default == "":
        return "*(unset)*"
    import json

    return f"`{json.dumps(default) if isinstance(default, (list, bool)) else default}`"


def render_markdown() -> str:
    """docs/stack-config.md: the same declarations as Pulumi.yaml, as tables per section."""
    decls = pulumi_project_config()
    parts = [
        "# Stack config reference\n\n"
        "Generated by `python -m components.config markdown > docs/stack-config.md` from components/config.py\n"
        "(a unit test keeps the two equal). Keys are set as `csm:<key>` in `Pulumi.<stack>.yaml`;\n"
        "`aws:region` is required for AWS targets.\n"
    ]
    for section, model in SECTIONS.items():
        parts.append(f"\n## {section}\n\n| key | type | default | description |\n|---|---|---|---|\n")
        for name, f in model.model_fields.items():
            decl = decls[f.alias or name]
            kind = (
                decl["type"]
                + ("&lt;string&gt;" if decl["type"] == "array" else "")
                + (" (secret)" if f.alias in SECRET_KEYS else "")
            )
            description = decl["description"].replace("|", "\\|")
            parts.append(f"| `csm:{f.alias}` | {kind} | {_markdown_default(decl)} | {description} |\n")
    return "".join(parts)


def main(argv: list[str]) -> int:
    if argv[:1] == ["pulumi-yaml"]:
        sys.stdout.write(render_pulumi_yaml())
        return 0
    if argv[:1] == ["markdown"]:
        sys.stdout.write(render_markdown())
        return 0
    if argv[:1] == ["check"] and len(argv) == 2:
        from components.stackfiles import load_stack_values

        try:
            StackConfig.load(load_stack_values(argv[1]), stack=argv[1], secret_keys=())
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"stack {argv[1]}: config ok")
        return 0
    print("usage: python -m components.config pulumi-yaml | markdown | check <stack>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
