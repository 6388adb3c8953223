"""ECS renderer: ServiceSpec -> container definitions / RegisterTaskDefinition input (AWS API JSON).

What ``container_definitions`` returns is exactly the JSON the ECS component hands to
``aws.ecs.TaskDefinition(container_definitions=...)``; the unit tests validate it against
botocore's model of ``RegisterTaskDefinition``.

Fargate notes: ``linuxParameters.tmpfs`` and ``dockerSecurityOptions`` are not supported on
Fargate, so the writable /tmp is a task-scoped ephemeral volume and no-new-privileges follows
from running as a non-root user with every capability dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from components import per_stack
from components.spec import ServiceSpec

ACCOUNT_PLACEHOLDER = "000000000000"
ARCHITECTURES = {"arm64": "ARM64", "x86_64": "X86_64"}


def log_group_name(spec: ServiceSpec) -> str:
    return f"/ecs/{per_stack(spec.name, spec.stack)}"


def secret_arn_placeholder(ref: str, region: str | None) -> str:
    """Offline stand-in for a secret given by name (the component resolves the real ARN)."""
    return (
        ref
        if ref.startswith("arn:")
        else f"arn:aws:secretsmanager:{region or 'us-east-1'}:{ACCOUNT_PLACEHOLDER}:secret:{ref}"
    )


def tmp_volume_name(path: str) -> str:
    return "tmp" if path == "/tmp" else "tmpfs" + path.replace("/", "-")  # nosec B108 # a path inside the container (its tmpfs volume), not a host temp file


def environment(spec: ServiceSpec) -> dict[str, str]:
    """The container's variables. Fargate enforces the task's CPU on the task, not on the container (whose
    ``cpu`` is only a relative share), so the service cannot read its budget there: the worker count is
    one per whole vCPU of the task, unless the stack's environment sets CSM_WORKERS.
    (ContainerDefinition.cpu "maps to CpuShares"; the task-level cpu sets "the maximum amount of CPU
    resources that your containers in a task are allowed": ECS API reference and
    https://repost.aws/knowledge-center/ecs-cpu-allocation.)"""
    return {"CSM_WORKERS": str(max(1, spec.resources.cpu_units // 1024)), **spec.env_dict}


def container_definitions(
    spec: ServiceSpec,
    *,
    log_group: str,
    region: str,
    secret_arns: Mapping[str, str] | None = None,
    repository_credentials_arn: str | None = None,
) -> list[dict[str, Any]]:
    """``secret_arns`` maps each secret's ref (name or ARN) to its full ARN; ``repository_credentials_arn`` is the full
    ARN of ``spec.registry_credentials`` (default: the ref itself, or its placeholder ARN)."""
    arns = dict(secret_arns or {})
    missing = [s.ref for s in spec.secrets if s.env and s.ref not in arns and not s.is_arn]
    if missing:
        raise ValueError(f"no ARN for secret(s) {', '.join(missing)}")
    if any(s.path for s in spec.secrets):
        raise ValueError("ECS cannot mount secrets as files")
    h = spec.health
    container: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "essential": True,
        "portMappings": [
            {
                "name": "http",
                "containerPort": spec.port,
                "hostPort": spec.port,
                "protocol": "tcp",
                "appProtocol": "http",
            }
        ],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment(spec).items())],
        "secrets": [{"name": s.env, "valueFrom": arns.get(s.ref, s.ref)} for s in spec.secrets],
        **(
            {
                "repositoryCredentials": {
                    "credentialsParameter": repository_credentials_arn
                    or arns.get(spec.registry_credentials)
                    or spec.registry_credentials
                }
            }
            if spec.registry_credentials
            else {}
        ),
        "user": spec.security.user,
        "readonlyRootFilesystem": spec.security.read_only_root_fs,
        "privileged": False,
        "linuxParameters": {
            "capabilities": {"drop": list(spec.security.drop_capabilities), "add": []},
            "initProcessEnabled": True,
        },
        "mountPoints": [
            {"sourceVolume": tmp_volume_name(p), "containerPath": p, "readOnly": False}
            for p in spec.security.tmpfs_paths
        ],
        "healthCheck": {
            "command": ["CMD", *h.command],
            "interval": h.interval,
            "timeout": h.timeout,
            "retries": h.retries,
            "startPeriod": h.start_period,
        },
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": spec.name,
                "mode": "non-blocking",
                "max-buffer-size": "4m",
            },
        },
        "stopTimeout": min(120, spec.drain_seconds + 5),
        "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
    }
    return [container]


def task_definition(
    spec: ServiceSpec,
    *,
    family: str,
    log_group: str,
    region: str,
    execution_role_arn: str,
    task_role_arn: str,
    secret_arns: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The full RegisterTaskDefinition input (what `aws ecs register-task-definition` takes)."""
    return {
        "family": family,
        "taskRoleArn": task_role_arn,
        "executionRoleArn": execution_role_arn,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(spec.resources.cpu_units),
        "memory": str(spec.resources.memory_mib),
        "runtimePlatform": {"cpuArchitecture": ARCHITECTURES[spec.architecture], "operatingSystemFamily": "LINUX"},
        "volumes": [{"name": tmp_volume_name(p)} for p in spec.security.tmpfs_paths],
        "containerDefinitions": container_definitions(
            spec, log_group=log_group, region=region, secret_arns=secret_arns
        ),
    }


def render_files(cfg: Any, spec: ServiceSpec) -> dict[str, str]:
    region = spec.region or "us-east-1"
    arns = {s.ref: secret_arn_placeholder(s.ref, region) for s in spec.secrets}
    if spec.registry_credentials:
        arns[spec.registry_credentials] = secret_arn_placeholder(spec.registry_credentials, region)
    account = ACCOUNT_PLACEHOLDER
    family = per_stack(spec.name, spec.stack)
    taskdef = task_definition(
        spec,
        family=family,
        log_group=log_group_name(spec),
        region=region,
        execution_role_arn=f"arn:aws:iam::{account}:role/{family}-execution",
        task_role_arn=f"arn:aws:iam::{account}:role/{family}-task",
        secret_arns=arns,
    )
    return {
        "container-definitions.json": json.dumps(taskdef["containerDefinitions"], indent=2) + "\n",
        "task-definition.json": json.dumps(taskdef, indent=2) + "\n",
    }
