"""ECS Fargate service: cluster (Container Insights), log group, task definition from the ECS
renderer, task security group, and the service (private subnets, no public IP, behind the
ALB, circuit breaker with rollback, and ``wait_for_steady_state`` so a failed rollout fails
``pulumi up``). Create it with ``depends_on`` the load balancer component, so the target
group is attached to a listener before the service registers tasks in it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import per_stack, renamed
from components.ecs import render
from components.spec import ServiceSpec

HTTPS_PORT = 443
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


@dataclass(kw_only=True, frozen=True)
class Deployment:
    """How the ECS service runs and rolls out (the stack's ecs* keys)."""

    min_healthy_percent: int
    max_percent: int
    grace_period: int
    container_insights: str
    capacity_provider: str
    execute_command: bool


@dataclass(kw_only=True)
class ServiceArgs:
    spec: ServiceSpec
    image_ref: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    alb_security_group_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    task_role_arn: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    secret_arns: Mapping[str, pulumi.Input[str]]  # secret ref -> full ARN
    deployment: Deployment


class Service(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    service_name: pulumi.Output[str]
    task_definition_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:ecs:Service", name, None, renamed(opts, "csm:ecs:EcsService"))
        child = pulumi.ResourceOptions(parent=self)
        spec = args.spec

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value=args.deployment.container_insights)],
            opts=child,
        )

        # The Fargate capacity providers must be associated with the cluster before a service names them in its
        # capacity provider strategy ("they only need to be associated with a cluster to be used";
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html).
        capacity = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=cluster.name,
            capacity_providers=list(FARGATE_PROVIDERS),
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=args.deployment.capacity_provider,
                    weight=1,
                )
            ],
            opts=child,
        )

        refs = list(args.secret_arns)
        container_definitions = pulumi.Output.all(
            args.image_ref, args.log_group_name, *[args.secret_arns[r] for r in refs]
        ).apply(
            lambda a: json.dumps(
                render.container_definitions(
                    spec.with_image(a[0]),
                    log_group=a[1],
                    region=args.region,
                    secret_arns=dict(zip(refs, a[2:], strict=False)),
                    repository_credentials_arn=dict(zip(refs, a[2:], strict=False)).get(spec.registry_credentials)
                    if spec.registry_credentials
                    else None,
                )
            )
        )
        task_def = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=per_stack(spec.name, spec.stack),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            cpu=str(spec.resources.cpu_units),
            memory=str(spec.resources.memory_mib),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                cpu_architecture=render.ARCHITECTURES[spec.architecture],
                operating_system_family="LINUX",
            ),
            volumes=[
                aws.ecs.TaskDefinitionVolumeArgs(name=render.tmp_volume_name(p)) for p in spec.security.tmpfs_paths
            ],
            execution_role_arn=args.execution_role_arn,
            task_role_arn=args.task_role_arn,
            container_definitions=container_definitions,
            opts=child,
        )

        sg = aws.ec2.SecurityGroup(f"{name}-tasks", vpc_id=args.vpc_id, description=f"{spec.name} tasks", opts=child)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-alb",
            security_group_id=sg.id,
            referenced_security_group_id=args.alb_security_group_id,
            ip_protocol="tcp",
            from_port=spec.port,
            to_port=spec.port,
            description="load balancer to the service port",
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-tasks",
            security_group_id=args.alb_security_group_id,
            referenced_security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=spec.port,
            to_port=spec.port,
            description="load balancer to the tasks",
            opts=child,
        )
        egress_ports = sorted({HTTPS_PORT, spec.datastore.port})  # AWS APIs (ECR, logs, secrets) and Cassandra
        for port in egress_ports:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-out-{port}",
                security_group_id=sg.id,
                cidr_ipv4="0.0.0.0/0",
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description="AWS APIs over TLS" if port == HTTPS_PORT else "Cassandra",
                opts=child,
            )

        service = aws.ecs.Service(
            f"{name}-service",
            cluster=cluster.arn,
            task_definition=task_def.arn,
            desired_count=spec.scaling.desired,
            capacity_provider_strategies=[
                aws.ecs.ServiceCapacityProviderStrategyArgs(
                    capacity_provider=args.deployment.capacity_provider, weight=1
                )
            ],
            platform_version="LATEST",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.subnet_ids,
                security_groups=[sg.id],
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=args.target_group_arn,
                    container_name=spec.name,
                    container_port=spec.port,
                )
            ],
            health_check_grace_period_seconds=args.deployment.grace_period,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            deployment_controller=aws.ecs.ServiceDeploymentControllerArgs(type="ECS"),
            deployment_minimum_healthy_percent=args.deployment.min_healthy_percent,
            deployment_maximum_percent=args.deployment.max_percent,
            wait_for_steady_state=True,
            enable_execute_command=args.deployment.execute_command,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[capacity],
                # Application Auto Scaling owns the running count after the first deployment.
                ignore_changes=["desiredCount"],
            ),
        )
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.service_name = service.name
        self.task_definition_arn = task_def.arn
        self.security_group_id = sg.id
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "service_name": self.service_name,
                "task_definition_arn": self.task_definition_arn,
                "security_group_id": self.security_group_id,
            }
        )
