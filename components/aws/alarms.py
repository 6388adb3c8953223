"""CloudWatch alarms to an SNS topic: 5xx rate, p99 latency, unhealthy hosts, running below
desired, CPU high, memory high. The service metrics come from ECS (default) or, through
``eks_service_metrics``, from Container Insights on EKS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import renamed

PERIOD = 60


@dataclass(kw_only=True)
class AlarmThresholds:
    error_rate_percent: int
    p99_latency_ms: int
    cpu_percent: int
    memory_percent: int
    emails: Sequence[str]
    topic_arn: str | None  # existing topic; None = create one


@dataclass
class ServiceMetrics:
    """Where the service's own metrics live: ECS (default) or EKS Container Insights."""

    namespace: str
    dimensions: dict
    cpu_metric: str
    memory_metric: str
    running_namespace: str
    running_metric: str
    desired_metric: str | None = None  # None: compare running with desired_count
    desired_count: int = 0


def ecs_service_metrics(cluster_name: pulumi.Input[str], service_name: pulumi.Input[str]) -> ServiceMetrics:
    return ServiceMetrics(
        namespace="AWS/ECS",
        dimensions={"ClusterName": cluster_name, "ServiceName": service_name},
        cpu_metric="CPUUtilization",
        memory_metric="MemoryUtilization",
        running_namespace="ECS/ContainerInsights",
        running_metric="RunningTaskCount",
        desired_metric="DesiredTaskCount",
    )


def eks_service_metrics(cluster_name: pulumi.Input[str], namespace: str, service: str, min_pods: int) -> ServiceMetrics:
    """Container Insights on EKS has pod CPU/memory per Kubernetes Service but no desired count:
    'running below desired' compares running pods with the autoscaler's minimum."""
    dims = {"ClusterName": cluster_name, "Namespace": namespace, "Service": service}
    return ServiceMetrics(
        namespace="ContainerInsights",
        dimensions=dims,
        cpu_metric="pod_cpu_utilization_over_pod_limit",
        memory_metric="pod_memory_utilization_over_pod_limit",
        running_namespace="ContainerInsights",
        running_metric="service_number_of_running_pods",
        desired_count=min_pods,
    )


@dataclass(kw_only=True)
class AlarmsArgs:
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    thresholds: AlarmThresholds
    service_metrics: ServiceMetrics | None = None  # None: the ECS service's metrics


def _metric(
    id_: str, namespace: str, metric: str, dims: dict, stat: str = "Sum", return_data: bool = False
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=id_,
        return_data=return_data,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, dimensions=dims, period=PERIOD, stat=stat
        ),
    )


class Alarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]
    alarm_arns: pulumi.Output[list[str]]

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:aws:Alarms", name, None, renamed(opts, "csm:alarms:Alarms"))
        child = pulumi.ResourceOptions(parent=self)
        t = args.thresholds
        if t.topic_arn:
            topic_arn: pulumi.Output[str] = pulumi.Output.from_input(t.topic_arn)
        else:
            topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id="alias/aws/sns", opts=child)
            topic_arn = topic.arn
            for i, mail in enumerate(t.emails):
                aws.sns.TopicSubscription(
                    f"{name}-email-{i}", topic=topic.arn, protocol="email", endpoint=mail, opts=child
                )

        lb = {"LoadBalancer": args.alb_arn_suffix}
        tg = {"LoadBalancer": args.alb_arn_suffix, "TargetGroup": args.target_group_arn_suffix}
        sm = args.service_metrics or ecs_service_metrics(args.cluster_name, args.service_name)
        svc = sm.dimensions
        if sm.desired_metric:
            desired = _metric("desired", sm.running_namespace, sm.desired_metric, svc, stat="Average")
            missing = "desired - running"
        else:
            desired, missing = None, f"{sm.desired_count} - running"
        actions: dict[str, Any] = {"alarm_actions": [topic_arn], "ok_actions": [topic_arn]}

        alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-5xx-rate",
                alarm_description=f"5xx responses above {t.error_rate_percent}% of requests",
                comparison_operator="GreaterThanThreshold",
                threshold=t.error_rate_percent,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                treat_missing_data="notBreaching",
                metric_queries=[
                    _metric("target5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", tg),
                    _metric("elb5xx", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb),
                    _metric("requests", "AWS/ApplicationELB", "RequestCount", lb),
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="rate",
                        label="5xx %",
                        return_data=True,
                        expression="IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)",
                    ),
                ],
                **actions,
                opts=child,
            ),
            aws.cloudwatch.MetricAlarm(
                f"{name}-p99-latency",
                alarm_description=f"p99 target response time above {t.p99_latency_ms} ms",
                namespace="AWS/ApplicationELB",
                metric_name="TargetResponseTime",
                dimensions=tg,
                extended_statistic="p99",
                period=PERIOD,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=t.p99_latency_ms / 1000,
                treat_missing_data="notBreaching",
                **actions,
                opts=child,
            ),
            aws.cloudwatch.MetricAlarm(
                f"{name}-unhealthy-hosts",
                alarm_description="the target group has unhealthy targets",
                namespace="AWS/ApplicationELB",
                metric_name="UnHealthyHostCount",
                dimensions=tg,
                statistic="Maximum",
                period=PERIOD,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                treat_missing_data="notBreaching",
                **actions,
                opts=child,
            ),
            aws.cloudwatch.MetricAlarm(
                f"{name}-running-below-desired",
                alarm_description="fewer tasks running than desired",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=5,
                datapoints_to_alarm=5,
                treat_missing_data="breaching",
                metric_queries=[
                    *([desired] if desired else []),
                    _metric("running", sm.running_namespace, sm.running_metric, svc, stat="Average"),
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="missing", label="desired - running", return_data=True, expression=missing
                    ),
                ],
                **actions,
                opts=child,
            ),
            aws.cloudwatch.MetricAlarm(
                f"{name}-cpu-high",
                alarm_description=f"service CPU above {t.cpu_percent}%",
                namespace=sm.namespace,
                metric_name=sm.cpu_metric,
                dimensions=svc,
                statistic="Average",
                period=PERIOD,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=t.cpu_percent,
                treat_missing_data="notBreaching",
                **actions,
                opts=child,
            ),
            aws.cloudwatch.MetricAlarm(
                f"{name}-memory-high",
                alarm_description=f"service memory above {t.memory_percent}%",
                namespace=sm.namespace,
                metric_name=sm.memory_metric,
                dimensions=svc,
                statistic="Average",
                period=PERIOD,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=t.memory_percent,
                treat_missing_data="notBreaching",
                **actions,
                opts=child,
            ),
        ]
        self.topic_arn = topic_arn
        self.alarm_names = pulumi.Output.all(*[a.name for a in alarms])
        self.alarm_arns = pulumi.Output.all(*[a.arn for a in alarms])
        self.register_outputs({"topic_arn": self.topic_arn, "alarm_names": self.alarm_names})
