"""CloudWatch dashboard: traffic, errors, latency, target health, tasks, CPU/memory, alarm state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import renamed


def dashboard_body(
    *, region: str, cluster: str, service: str, alb: str, target_group: str, alarm_arns: Sequence[str]
) -> dict[str, Any]:
    def graph(title: str, metrics: list, x: int, y: int, stat: str = "Sum", **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "metrics": metrics,
                "stat": stat,
                "period": 60,
                "view": "timeSeries",
                **extra,
            },
        }

    elb, ecs, ci = "AWS/ApplicationELB", "AWS/ECS", "ECS/ContainerInsights"
    return {
        "widgets": [
            graph("Requests", [[elb, "RequestCount", "LoadBalancer", alb]], 0, 0),
            graph(
                "5xx responses",
                [
                    [elb, "HTTPCode_Target_5XX_Count", "LoadBalancer", alb, "TargetGroup", target_group],
                    [elb, "HTTPCode_ELB_5XX_Count", "LoadBalancer", alb],
                ],
                12,
                0,
            ),
            graph(
                "Target response time",
                [
                    [elb, "TargetResponseTime", "LoadBalancer", alb, "TargetGroup", target_group, {"stat": "p50"}],
                    [elb, "TargetResponseTime", "LoadBalancer", alb, "TargetGroup", target_group, {"stat": "p99"}],
                ],
                0,
                6,
                stat="p99",
            ),
            graph(
                "Target health",
                [
                    [elb, "HealthyHostCount", "LoadBalancer", alb, "TargetGroup", target_group],
                    [elb, "UnHealthyHostCount", "LoadBalancer", alb, "TargetGroup", target_group],
                ],
                12,
                6,
                stat="Maximum",
            ),
            graph(
                "Tasks",
                [
                    [ci, "RunningTaskCount", "ClusterName", cluster, "ServiceName", service],
                    [ci, "DesiredTaskCount", "ClusterName", cluster, "ServiceName", service],
                ],
                0,
                12,
                stat="Average",
            ),
            graph(
                "CPU / memory %",
                [
                    [ecs, "CPUUtilization", "ClusterName", cluster, "ServiceName", service],
                    [ecs, "MemoryUtilization", "ClusterName", cluster, "ServiceName", service],
                ],
                12,
                12,
                stat="Average",
            ),
            {
                "type": "alarm",
                "x": 0,
                "y": 18,
                "width": 24,
                "height": 3,
                "properties": {"title": "Alarms", "alarms": list(alarm_arns)},
            },
        ]
    }


@dataclass(kw_only=True)
class DashboardArgs:
    region: str
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    alarm_arns: pulumi.Input[Sequence[str]] = field(default_factory=list)


class Dashboard(pulumi.ComponentResource):
    name: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:aws:Dashboard", name, None, renamed(opts, "csm:dashboard:Dashboard"))
        body = pulumi.Output.all(
            args.cluster_name, args.service_name, args.alb_arn_suffix, args.target_group_arn_suffix, args.alarm_arns
        ).apply(
            lambda a: json.dumps(
                dashboard_body(
                    region=args.region, cluster=a[0], service=a[1], alb=a[2], target_group=a[3], alarm_arns=a[4]
                )
            )
        )
        dash = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=name, dashboard_body=body, opts=pulumi.ResourceOptions(parent=self)
        )
        self.name = dash.dashboard_name
        self.url = dash.dashboard_name.apply(
            lambda n: (
                f"https://{args.region}.console.aws.amazon.com/cloudwatch/home?region={args.region}#dashboards:name={n}"
            )
        )
        self.register_outputs({"name": self.name, "url": self.url})
