"""Autoscaling (target tracking on CPU, memory, ALB requests per target), alarms to SNS, dashboard."""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pytest

from harness.pulumi_mocks import CsmMocks, construct, install, stack_config

mocks = install(CsmMocks())

from components.aws.alarms import Alarms, AlarmsArgs  # noqa: E402
from components.aws.dashboard import Dashboard, DashboardArgs, dashboard_body  # noqa: E402
from components.aws.from_config import alarm_thresholds  # noqa: E402
from components.ecs.autoscaling import Autoscaling, AutoscalingArgs  # noqa: E402

CONFIG = stack_config()
THRESHOLDS = alarm_thresholds(CONFIG)  # the model's defaults
COOLDOWNS = dict(
    scale_in_cooldown=CONFIG.scaling.scale_in_cooldown, scale_out_cooldown=CONFIG.scaling.scale_out_cooldown
)

DIMS = dict(
    cluster_name="csm-cluster",
    service_name="csm-service",
    alb_arn_suffix="app/csm/1",
    target_group_arn_suffix="targetgroup/csm/2",
)


@pytest.fixture(scope="module")
def scaling():
    return construct(
        lambda: Autoscaling(
            "scale",
            AutoscalingArgs(
                **DIMS, min_count=2, max_count=6, cpu_target=60, memory_target=70, requests_per_target=500, **COOLDOWNS
            ),
        )
    )[0]


def test_scalable_target_bounds(scaling):
    t = scaling.one("aws:appautoscaling/target:Target").inputs
    assert (t["minCapacity"], t["maxCapacity"], t["resourceId"], t["scalableDimension"]) == (
        2,
        6,
        "service/csm-cluster/csm-service",
        "ecs:service:DesiredCount",
    )


@pytest.mark.parametrize(
    "name,metric,value",
    [
        ("scale-cpu", "ECSServiceAverageCPUUtilization", 60),
        ("scale-memory", "ECSServiceAverageMemoryUtilization", 70),
        ("scale-requests", "ALBRequestCountPerTarget", 500),
    ],
)
def test_target_tracking_policy(scaling, name, metric, value):
    p = scaling.one("aws:appautoscaling/policy:Policy", name).inputs
    conf = p["targetTrackingScalingPolicyConfiguration"]
    assert p["policyType"] == "TargetTrackingScaling", name
    assert (conf["predefinedMetricSpecification"]["predefinedMetricType"], conf["targetValue"]) == (metric, value), name


def test_requests_policy_is_labelled_with_alb_and_target_group(scaling):
    spec = scaling.one("aws:appautoscaling/policy:Policy", "scale-requests").inputs[
        "targetTrackingScalingPolicyConfiguration"
    ]["predefinedMetricSpecification"]
    assert spec["resourceLabel"] == "app/csm/1/targetgroup/csm/2"


@pytest.fixture(scope="module")
def alarms():
    return construct(
        lambda: Alarms(
            "alarms", AlarmsArgs(**DIMS, thresholds=dataclasses.replace(THRESHOLDS, emails=["oncall@example.com"]))
        )
    )[0]


EXPECTED_ALARMS = [
    "alarms-5xx-rate",
    "alarms-p99-latency",
    "alarms-unhealthy-hosts",
    "alarms-running-below-desired",
    "alarms-cpu-high",
    "alarms-memory-high",
]


def test_the_six_alarms_exist(alarms):
    assert sorted(a.name for a in alarms.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")) == sorted(EXPECTED_ALARMS)


@pytest.mark.parametrize("name", EXPECTED_ALARMS)
def test_alarm_notifies_the_topic(alarms, name):
    a = alarms.one("aws:cloudwatch/metricAlarm:MetricAlarm", name).inputs
    topic = alarms.one("aws:sns/topic:Topic").outputs["arn"]
    assert a["alarmActions"] == [topic] and a["okActions"] == [topic], name


def test_5xx_rate_is_a_percentage_of_requests(alarms):
    q = alarms.one("aws:cloudwatch/metricAlarm:MetricAlarm", "alarms-5xx-rate").inputs["metricQueries"]
    expr = next(x for x in q if x.get("returnData"))["expression"]
    assert "100 *" in expr and "requests" in expr


def test_p99_latency_threshold_in_seconds(alarms):
    a = alarms.one("aws:cloudwatch/metricAlarm:MetricAlarm", "alarms-p99-latency").inputs
    assert (a["extendedStatistic"], a["threshold"]) == ("p99", 1.0)


def test_running_below_desired_uses_container_insights(alarms):
    q = alarms.one("aws:cloudwatch/metricAlarm:MetricAlarm", "alarms-running-below-desired").inputs["metricQueries"]
    names = {x["metric"]["metricName"] for x in q if "metric" in x}
    assert names == {"DesiredTaskCount", "RunningTaskCount"}


def test_topic_is_encrypted_and_emails_subscribed(alarms):
    assert alarms.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == "alias/aws/sns"
    sub = alarms.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert (sub["protocol"], sub["endpoint"]) == ("email", "oncall@example.com")


def test_existing_topic_is_used_as_is():
    topic = "arn:aws:sns:eu-west-1:111122223333:ops"
    rec = construct(
        lambda: Alarms("alarms", AlarmsArgs(**DIMS, thresholds=dataclasses.replace(THRESHOLDS, topic_arn=topic)))
    )[0]
    assert rec.of_type("aws:sns/topic:Topic") == []
    assert all(a.inputs["alarmActions"] == [topic] for a in rec.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"))


@pytest.fixture(scope="module")
def dashboard():
    return construct(
        lambda: (lambda d: (d, {"url": d.url}))(
            Dashboard("csm-dev", DashboardArgs(region="eu-west-1", **DIMS, alarm_arns=["arn:a"]))
        )
    )


def test_dashboard_body_is_json_with_service_widgets(dashboard):
    body = json.loads(dashboard[0].one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Requests",
        "5xx responses",
        "Target response time",
        "Target health",
        "Tasks",
        "CPU / memory %",
        "Alarms",
    ]


def test_dashboard_url_output(dashboard):
    assert dashboard[1][1]["url"].endswith("#dashboards:name=csm-dev")


def test_dashboard_metrics_name_the_service():
    body = dashboard_body(region="r", cluster="c", service="s", alb="a", target_group="t", alarm_arns=[])
    tasks = body["widgets"][4]["properties"]["metrics"][0]
    assert tasks == ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", "c", "ServiceName", "s"]


@pulumi.runtime.test
def test_alarm_names_output_lists_all_six():
    install(mocks)
    a = Alarms("al2", AlarmsArgs(**DIMS, thresholds=THRESHOLDS))
    return a.alarm_names.apply(lambda names: None if len(names) == 6 else pytest.fail(f"al2 alarms {names}"))
