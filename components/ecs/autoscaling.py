"""Application Auto Scaling of the ECS service: target tracking on CPU, memory and ALB requests per target."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import renamed


@dataclass(kw_only=True)
class AutoscalingArgs:
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    min_count: int
    max_count: int
    cpu_target: int
    memory_target: int
    requests_per_target: int
    scale_in_cooldown: int
    scale_out_cooldown: int


class Autoscaling(pulumi.ComponentResource):
    resource_id: pulumi.Output[str]

    def __init__(self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:ecs:Autoscaling", name, None, renamed(opts, "csm:autoscaling:Autoscaling"))
        child = pulumi.ResourceOptions(parent=self)
        target = aws.appautoscaling.Target(
            f"{name}-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", args.cluster_name, "/", args.service_name),
            min_capacity=args.min_count,
            max_capacity=args.max_count,
            opts=child,
        )
        policies = {
            "cpu": (args.cpu_target, "ECSServiceAverageCPUUtilization", None),
            "memory": (args.memory_target, "ECSServiceAverageMemoryUtilization", None),
            "requests": (
                args.requests_per_target,
                "ALBRequestCountPerTarget",
                pulumi.Output.concat(args.alb_arn_suffix, "/", args.target_group_arn_suffix),
            ),
        }
        for key, (value, metric, label) in policies.items():
            aws.appautoscaling.Policy(
                f"{name}-{key}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=float(value),
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=metric,
                        resource_label=label,
                    ),
                    scale_in_cooldown=args.scale_in_cooldown,
                    scale_out_cooldown=args.scale_out_cooldown,
                ),
                opts=child,
            )
        self.resource_id = target.resource_id
        self.register_outputs({"resource_id": self.resource_id})
