"""What a prod stack (csm:environment prod) must have on top of the general rules."""

from __future__ import annotations

import typing
from collections.abc import Iterable

from components.config.base import AUTOSCALED_TARGETS, DESIRED_COUNT_TARGETS, Problem
from components.config.rules import P, rule

if typing.TYPE_CHECKING:
    from components.config.model import StackConfig


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
