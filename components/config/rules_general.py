"""Cross-key rules that hold on every target."""

from __future__ import annotations

import typing
from collections.abc import Iterable

from components.config.base import (
    AUTOSCALED_TARGETS,
    AWS_REGION_KEY,
    CONFIG_KEY,
    IMAGE_SECRETS_DIR,
    REQUIRED_SECRET_SETTINGS,
    Problem,
    qualify,
)
from components.config.rules import P, rule
from components.config.sections import KEYS

if typing.TYPE_CHECKING:
    from components.config.model import StackConfig


@rule("target", AWS_REGION_KEY, "cassandraMode", "swarmAwsLogs", "imageRef", "imageRegistry", "secretSource")
def _region_needed(c: StackConfig) -> Iterable[Problem]:
    ecr_build = c.image.ref is None and c.image.registry is None
    aws_secrets = c.target == "swarm" and c.secrets.source == "aws" and bool(c.secrets.items)
    needs = (
        c.target in ("ecs", "eks") or c.cassandra.mode == "keyspaces" or c.swarm.aws_logs or ecr_build or aws_secrets
    )
    if needs and c.aws_region is None:
        yield P(AWS_REGION_KEY, "is required (AWS resources are created for this stack)")


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


@rule("healthCheckTimeout", "healthCheckInterval")
def _health_timeout(c: StackConfig) -> Iterable[Problem]:
    if c.health.timeout >= c.health.interval:
        yield P(
            "healthCheckTimeout",
            f"must be shorter than healthCheckInterval ({c.health.timeout} >= {c.health.interval})",
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
