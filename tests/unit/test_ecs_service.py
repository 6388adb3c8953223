"""ECS service component: cluster, task definition from the renderer, task security group, service."""

from __future__ import annotations

import json

import botocore.session
import pulumi
import pytest
from botocore.validate import ParamValidator

from harness.pulumi_mocks import CsmMocks, construct, install

mocks = install(CsmMocks())

from harness.ecs_service import IMAGE, make  # noqa: E402

REGISTER = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape


@pytest.fixture(scope="module")
def rec():
    return construct(make)[0]


def service(rec):
    return rec.one("aws:ecs/service:Service").inputs


def taskdef(rec):
    return rec.one("aws:ecs/taskDefinition:TaskDefinition").inputs


def test_cluster_has_container_insights(rec):
    assert rec.one("aws:ecs/cluster:Cluster").inputs["settings"] == [{"name": "containerInsights", "value": "enabled"}]


def test_service_runs_in_private_subnets_without_public_ip(rec):
    net = service(rec)["networkConfiguration"]
    assert net["subnets"] == ["subnet-p1", "subnet-p2"] and net["assignPublicIp"] is False, f"svc-service: {net}"


def test_circuit_breaker_rolls_back(rec):
    assert service(rec)["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}


def test_failed_rollout_fails_pulumi_up(rec):
    assert service(rec)["waitForSteadyState"] is True, "svc-service: pulumi up must wait for the rollout"


def test_healthy_percent_bounds(rec):
    s = service(rec)
    assert (s["deploymentMinimumHealthyPercent"], s["deploymentMaximumPercent"]) == (100, 200)


def test_health_check_grace_period(rec):
    assert service(rec)["healthCheckGracePeriodSeconds"] == 60


def test_service_sits_behind_the_target_group(rec):
    assert service(rec)["loadBalancers"] == [
        {"targetGroupArn": "arn:tg", "containerName": "csm", "containerPort": 8000}
    ]


def test_fargate_capacity(rec):
    assert service(rec)["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE", "weight": 1}]


def test_exec_is_off(rec):
    assert service(rec)["enableExecuteCommand"] is False


def test_task_definition_runtime_platform(rec):
    assert taskdef(rec)["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}


def test_task_definition_roles_are_separate(rec):
    td = taskdef(rec)
    assert td["executionRoleArn"] != td["taskRoleArn"]


def test_deployed_container_definitions_validate_against_botocore(rec):
    td = taskdef(rec)
    params = {
        "family": td["family"],
        "containerDefinitions": json.loads(td["containerDefinitions"]),
        "cpu": td["cpu"],
        "memory": td["memory"],
        "networkMode": td["networkMode"],
        "requiresCompatibilities": td["requiresCompatibilities"],
        "volumes": td["volumes"],
        "runtimePlatform": td["runtimePlatform"],
        "executionRoleArn": td["executionRoleArn"],
        "taskRoleArn": td["taskRoleArn"],
    }
    report = ParamValidator().validate(params, REGISTER)
    assert not report.has_errors(), report.generate_report()


def test_deployed_container_uses_the_image_digest_and_secret_arns(rec):
    c = json.loads(taskdef(rec)["containerDefinitions"])[0]
    assert c["image"] == IMAGE
    assert all(s["valueFrom"].endswith("-Ab12Cd") for s in c["secrets"])


def test_deployed_container_hardening(rec):
    c = json.loads(taskdef(rec)["containerDefinitions"])[0]
    assert (c["user"], c["readonlyRootFilesystem"], c["linuxParameters"]["capabilities"]["drop"]) == (
        "65532:65532",
        True,
        ["ALL"],
    )
    assert c["healthCheck"]["command"] == ["CMD", "/opt/venv/bin/python", "-m", "csm", "healthcheck"]
    assert c["logConfiguration"]["options"]["awslogs-group"] == "/ecs/csm-prod"


def test_tasks_accept_traffic_only_from_the_alb(rec):
    rules = rec.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert [(r.inputs["referencedSecurityGroupId"], r.inputs["fromPort"], r.inputs.get("cidrIpv4")) for r in rules] == [
        ("sg-alb", 8000, None)
    ]


def test_tasks_reach_out_only_to_https_and_cassandra(rec):
    ports = sorted(
        r.inputs["fromPort"]
        for r in rec.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.inputs["securityGroupId"] != "sg-alb"
    )
    assert ports == [443, 9142], f"svc-tasks egress: {ports}"


def test_alb_may_reach_the_tasks_on_the_service_port(rec):
    rule = rec.one("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "svc-alb-to-tasks").inputs
    assert (rule["securityGroupId"], rule["fromPort"]) == ("sg-alb", 8000)


@pulumi.runtime.test
def test_outputs_name_cluster_and_service():
    install(mocks)
    svc = make()
    return pulumi.Output.all(svc.cluster_name, svc.service_name, svc.task_definition_arn).apply(
        lambda v: None if all(v) else pytest.fail(f"svc outputs {v}")
    )
