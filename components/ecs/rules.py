"""Cross-key rules of the ECS target (Fargate sizes, deployments, capacity providers, private registries)."""

from __future__ import annotations

import typing
from collections.abc import Iterable

from components.config.base import ECR_IMAGE, FARGATE_SIZES, Problem
from components.config.rules import P, rule

if typing.TYPE_CHECKING:
    from components.config.model import StackConfig


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
