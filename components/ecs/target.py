"""The ECS Fargate target: network, load balancer, IAM, service, autoscaling, alarms, dashboard.

``Target`` composes the components; ``deploy`` maps the stack config onto its args (the
target-dispatch entry point, see components/targets.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import per_stack, renamed
from components.aws.alarms import Alarms, AlarmsArgs, AlarmThresholds
from components.aws.dashboard import Dashboard, DashboardArgs
from components.aws.from_config import alarm_thresholds, network_args
from components.aws.network import Network, NetworkArgs
from components.config import StackConfig
from components.ecs import render
from components.ecs.autoscaling import Autoscaling, AutoscalingArgs
from components.ecs.load_balancer import LoadBalancer, LoadBalancerArgs
from components.ecs.service import Deployment, Service, ServiceArgs
from components.ecs.task_roles import TaskRoles, TaskRolesArgs
from components.spec import ServiceSpec
from components.targets import DeployedImage


@dataclass(kw_only=True)
class TargetArgs:
    spec: ServiceSpec
    image_ref: pulumi.Input[str]
    region: str
    network: NetworkArgs
    ecr_repository_arn: pulumi.Input[str] | None
    certificate_arn: str | None
    domain_name: str | None
    ssl_policy: str
    internal: bool
    ingress_cidrs: Sequence[str]
    idle_timeout: int
    deletion_protection: bool
    kms_key_arns: Sequence[str]
    deployment: Deployment
    alarms: AlarmThresholds


class Target(pulumi.ComponentResource):
    service_url: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    alarm_topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:ecs:Target", name, None, renamed(opts, "csm:ecs:EcsTarget"))
        child = pulumi.ResourceOptions(parent=self)
        spec = args.spec
        invoke = pulumi.InvokeOutputOptions(parent=self)

        network = Network(f"{name}-net", args.network, opts=child)
        lb = LoadBalancer(
            f"{name}-lb",
            LoadBalancerArgs(
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids if args.internal else network.public_subnet_ids,
                target_port=spec.port,
                # Liveness, not readiness: ECS replaces every task its target group reports unhealthy, so a readiness check
                # would cycle all tasks through a Cassandra outage (docs/health-model.md).
                health_path=spec.health.live_path,
                health_interval=spec.health.interval,
                health_timeout=spec.health.timeout,
                unhealthy_threshold=spec.health.retries,
                certificate_arn=args.certificate_arn,
                ssl_policy=args.ssl_policy,
                internal=args.internal,
                ingress_cidrs=args.ingress_cidrs,
                idle_timeout=args.idle_timeout,
                deregistration_delay=spec.drain_seconds,
                deletion_protection=args.deletion_protection,
            ),
            opts=child,
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=render.log_group_name(spec),
            retention_in_days=spec.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        # Full ARNs (with Secrets Manager's random suffix) for valueFrom and the IAM policy.
        secret_arns = {
            s.ref: aws.secretsmanager.get_secret_output(arn=s.ref, opts=invoke).arn
            if s.is_arn
            else aws.secretsmanager.get_secret_output(name=s.ref, opts=invoke).arn
            for s in spec.secrets
        }
        if spec.registry_credentials:  # the private registry's credentials: read by the execution role at pull time
            ref = spec.registry_credentials
            secret_arns[ref] = (
                aws.secretsmanager.get_secret_output(arn=ref, opts=invoke)
                if ref.startswith("arn:")
                else aws.secretsmanager.get_secret_output(name=ref, opts=invoke)
            ).arn
        roles = TaskRoles(
            f"{name}-roles",
            TaskRolesArgs(
                log_group_arn=log_group.arn,
                region=args.region,
                secret_arns=list(secret_arns.values()),
                kms_key_arns=args.kms_key_arns,
                ecr_repository_arn=args.ecr_repository_arn,
                keyspaces=spec.datastore.keyspaces,
                keyspace=spec.datastore.keyspace,
                execute_command=args.deployment.execute_command,
            ),
            opts=child,
        )
        service = Service(
            f"{name}-svc",
            ServiceArgs(
                spec=spec,
                image_ref=args.image_ref,
                region=args.region,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                alb_security_group_id=lb.security_group_id,
                target_group_arn=lb.target_group_arn,
                execution_role_arn=roles.execution_role_arn,
                task_role_arn=roles.task_role_arn,
                log_group_name=log_group.name,
                secret_arns=secret_arns,
                deployment=args.deployment,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[lb]),
        )
        Autoscaling(
            f"{name}-scaling",
            AutoscalingArgs(
                cluster_name=service.cluster_name,
                service_name=service.service_name,
                alb_arn_suffix=lb.arn_suffix,
                target_group_arn_suffix=lb.target_group_arn_suffix,
                min_count=spec.scaling.min,
                max_count=spec.scaling.max,
                cpu_target=spec.scaling.cpu_target,
                memory_target=spec.scaling.memory_target,
                requests_per_target=spec.scaling.requests_per_target,
                scale_in_cooldown=spec.scaling.scale_in_cooldown,
                scale_out_cooldown=spec.scaling.scale_out_cooldown,
            ),
            opts=child,
        )
        alarms = Alarms(
            f"{name}-alarms",
            AlarmsArgs(
                cluster_name=service.cluster_name,
                service_name=service.service_name,
                alb_arn_suffix=lb.arn_suffix,
                target_group_arn_suffix=lb.target_group_arn_suffix,
                thresholds=args.alarms,
            ),
            opts=child,
        )
        dashboard = Dashboard(
            per_stack(spec.name, spec.stack),
            DashboardArgs(
                region=args.region,
                cluster_name=service.cluster_name,
                service_name=service.service_name,
                alb_arn_suffix=lb.arn_suffix,
                target_group_arn_suffix=lb.target_group_arn_suffix,
                alarm_arns=alarms.alarm_arns,
            ),
            opts=child,
        )

        scheme = "https" if args.certificate_arn else "http"
        host = pulumi.Output.from_input(args.domain_name) if args.domain_name else lb.dns_name
        self.service_url = host.apply(lambda h: f"{scheme}://{h}")
        self.log_group_name = log_group.name
        self.dashboard_url = dashboard.url
        self.cluster_name = service.cluster_name
        self.service_name = service.service_name
        self.alarm_topic_arn = alarms.topic_arn
        self.register_outputs(
            {
                "service_url": self.service_url,
                "log_group_name": self.log_group_name,
                "dashboard_url": self.dashboard_url,
                "cluster_name": self.cluster_name,
                "service_name": self.service_name,
                "alarm_topic_arn": self.alarm_topic_arn,
            }
        )


def deployment(cfg: StackConfig) -> Deployment:
    e = cfg.ecs
    return Deployment(
        min_healthy_percent=e.min_healthy_percent,
        max_percent=e.max_percent,
        grace_period=e.grace_period,
        container_insights=e.container_insights,
        capacity_provider=e.capacity_provider,
        execute_command=e.enable_execute_command,
    )


def target_args(cfg: StackConfig, spec: ServiceSpec, image: DeployedImage) -> TargetArgs:
    n, i = cfg.network, cfg.ingress
    return TargetArgs(
        spec=spec,
        image_ref=image.ref,
        ecr_repository_arn=image.ecr_repository_arn,
        region=cfg.aws_region or "",
        network=network_args(cfg),
        certificate_arn=i.certificate_arn,
        domain_name=i.domain_name,
        ssl_policy=i.ssl_policy,
        internal=i.internal,
        ingress_cidrs=n.ingress_cidrs,
        idle_timeout=i.idle_timeout,
        deletion_protection=cfg.general.deletion_protection,
        kms_key_arns=cfg.secrets.kms_key_arns,
        deployment=deployment(cfg),
        alarms=alarm_thresholds(cfg),
    )


def deploy(
    cfg: StackConfig, spec: ServiceSpec, image: DeployedImage, opts: pulumi.ResourceOptions
) -> dict[str, pulumi.Input]:
    target = Target(cfg.name, target_args(cfg, spec, image), opts=opts)
    return {
        "serviceUrl": target.service_url,
        "logGroup": target.log_group_name,
        "dashboard": target.dashboard_url,
        "cluster": target.cluster_name,
        "service": target.service_name,
        "alarmTopic": target.alarm_topic_arn,
    }
