"""Constants, the error type and the field helper every part of the config model uses."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

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


# Where each count means something: serviceDesiredCount is the count on Swarm and the starting count on ECS;
# scalingMin/MaxCount bound an autoscaler, which Swarm does not have.
DESIRED_COUNT_TARGETS = ("ecs", "swarm")
AUTOSCALED_TARGETS = ("ecs", "eks", "kubernetes")
