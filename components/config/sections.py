"""The sections of the stack config: one pydantic model per group of keys, each field's alias its flat key."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import field_validator

from components.config.base import (
    ACM_ARN,
    ENV_NAME,
    IMAGE_BY_DIGEST,
    IMAGE_HEALTHCHECK,
    KMS_ARN,
    LOG_RETENTION_DAYS,
    SECRET_ARN,
    SECRET_NAME,
    SECRETISH_ENV,
    SNS_ARN,
    _f,
    _Section,
)


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
