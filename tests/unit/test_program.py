"""The whole program under mocks, once per stack file (Pulumi.dev.yaml, Pulumi.prod.yaml loaded
into the mocked config with Pulumi.yaml's defaults, as the CLI would)."""

from __future__ import annotations

import json
import socket

import pytest

from harness.pulumi_mocks import (
    ACCOUNT,
    AZS,
    DIGEST,
    CsmMocks,
    as_list,
    assert_no_star_on_star,
    assert_well_formed,
    install,
    policy_documents,
    run_program,
)

install(CsmMocks())

from components.config import StackConfig  # noqa: E402
from components.ecs.render import container_definitions  # noqa: E402
from components.spec import build_spec  # noqa: E402
from components.stackfiles import as_pulumi_config, load_stack_values  # noqa: E402

STACKS = ["dev", "prod"]


def stack_config(stack: str, **overrides) -> dict[str, str]:
    values = {**load_stack_values(stack), **overrides}
    return as_pulumi_config(values)


@pytest.fixture(scope="module", params=STACKS)
def program(request):
    stack = request.param
    return stack, run_program(stack, stack_config(stack))


def test_outputs_are_exported(program):
    stack, m = program
    assert {"serviceUrl", "imageRef", "logGroup", "dashboard"} <= set(m.outputs), f"{stack}: {sorted(m.outputs)}"


def test_image_ref_output_is_by_digest(program):
    stack, m = program
    repository = {"dev": "csm-dev", "prod": "csm"}[
        stack
    ]  # one ECR repository per stack (names are unique per account and region)
    assert m.outputs["imageRef"] == f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/{repository}@{DIGEST}", stack


def test_task_definition_deploys_the_image_digest(program):
    stack, m = program
    container = json.loads(m.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])[0]
    assert container["image"] == m.outputs["imageRef"], stack


def test_deployed_container_definitions_are_the_rendered_ones(program):
    stack, m = program
    td = m.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    deployed = json.loads(td["containerDefinitions"])
    spec = build_spec(StackConfig.load(load_stack_values(stack), stack=stack), m.outputs["imageRef"])
    arns = {s.ref: next(x["valueFrom"] for x in deployed[0]["secrets"] if x["name"] == s.env) for s in spec.secrets}
    assert deployed == container_definitions(
        spec, log_group=m.outputs["logGroup"], region="eu-west-1", secret_arns=arns
    ), stack


def test_service_url_scheme(program):
    stack, m = program
    expected = (
        "https://csm.example.com" if stack == "prod" else "https://csm.dev.example.com"
    )  # no shipped stack serves HTTP
    assert m.outputs["serviceUrl"].startswith(expected), f"{stack}: {m.outputs['serviceUrl']}"


def test_log_group_retention_from_config(program):
    stack, m = program
    lg = m.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert (lg["name"], lg["retentionInDays"]) == (f"/ecs/csm-{stack}", {"dev": 14, "prod": 90}[stack])


def test_every_policy_parses_and_none_allows_star_on_star(program):
    stack, m = program
    docs = policy_documents(m)
    assert docs, stack
    for name, doc in docs.items():
        assert_well_formed(f"{stack}/{name}", doc)
        assert_no_star_on_star(f"{stack}/{name}", doc)


def test_execution_role_reads_exactly_the_task_secrets(program):
    stack, m = program
    container = json.loads(m.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])[0]
    doc = policy_documents(m)["csm-roles-execution"]
    granted = {
        r for s in doc["Statement"] if s["Action"] == "secretsmanager:GetSecretValue" for r in as_list(s["Resource"])
    }
    assert granted == {s["valueFrom"] for s in container["secrets"]}, stack


def test_keyspaces_permissions_only_when_keyspaces_is_used(program):
    stack, m = program
    assert ("csm-roles-task" in policy_documents(m)) == (stack == "prod"), f"{stack}: prod uses Keyspaces, dev does not"


def test_service_in_private_subnets_without_public_ip(program):
    stack, m = program
    net = m.one("aws:ecs/service:Service").inputs["networkConfiguration"]
    private = {f"{r.name}-id" for r in m.of_type("aws:ec2/subnet:Subnet") if "-private-" in r.name}
    assert set(net["subnets"]) == private and net["assignPublicIp"] is False, stack


def test_alb_in_public_subnets(program):
    stack, m = program
    public = {f"{r.name}-id" for r in m.of_type("aws:ec2/subnet:Subnet") if "-public-" in r.name}
    assert set(m.one("aws:lb/loadBalancer:LoadBalancer").inputs["subnets"]) == public, stack


def test_rollout_failure_fails_the_update(program):
    stack, m = program
    svc = m.one("aws:ecs/service:Service").inputs
    assert svc["waitForSteadyState"] is True and svc["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }, stack


def test_six_alarms_three_scaling_policies_one_dashboard(program):
    stack, m = program
    counts = (
        len(m.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")),
        len(m.of_type("aws:appautoscaling/policy:Policy")),
        len(m.of_type("aws:cloudwatch/dashboard:Dashboard")),
    )
    assert counts == (6, 3, 1), f"{stack}: {counts}"


def test_resources_are_tagged_through_the_provider(program):
    stack, m = program
    tags = json.loads(m.one("pulumi:providers:aws").inputs["defaultTags"])["tags"]
    assert (tags["environment"], tags["stack"], tags["team"]) == (stack, stack, "platform")


def prod():
    return run_program("prod", stack_config("prod"))


@pytest.fixture(scope="module")
def prod_run():
    return prod()


def test_prod_runs_at_least_two_tasks(prod_run):
    assert prod_run.one("aws:ecs/service:Service").inputs["desiredCount"] >= 2
    assert prod_run.one("aws:appautoscaling/target:Target").inputs["minCapacity"] >= 2


def test_prod_tasks_span_at_least_two_azs(prod_run):
    subnets = {f"{r.name}-id": r.inputs["availabilityZone"] for r in prod_run.of_type("aws:ec2/subnet:Subnet")}
    used = prod_run.one("aws:ecs/service:Service").inputs["networkConfiguration"]["subnets"]
    assert len({subnets[s] for s in used}) >= 2


def test_prod_serves_https_and_redirects_http(prod_run):
    listeners = {lis.inputs["port"]: lis.inputs for lis in prod_run.of_type("aws:lb/listener:Listener")}
    assert listeners[443]["protocol"] == "HTTPS" and listeners[80]["defaultActions"][0]["type"] == "redirect"


def test_prod_has_deletion_protection(prod_run):
    assert prod_run.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    assert prod_run.one("aws:ecr/repository:Repository", "csm-image-repo").inputs["forceDelete"] is False


def test_prod_scan_uses_the_prod_gate_policy(prod_run):
    assert "--policy prod" in prod_run.one("command:local:Command").inputs["create"]


def test_dev_scan_uses_the_dev_gate_policy():
    m = run_program("dev", stack_config("dev"))
    assert "--policy dev" in m.one("command:local:Command").inputs["create"]


def test_invalid_config_fails_before_any_resource():
    mocks = CsmMocks()
    with pytest.raises(Exception) as info:
        run_program("prod", stack_config("prod", **{"csm:deletionProtection": False, "csm:servicePort": 80}), mocks)
    assert "csm:deletionProtection" in str(info.value) and "csm:servicePort" in str(info.value)
    assert mocks.registered == [], [r.name for r in mocks.registered]


def test_existing_image_ref_skips_the_build_but_keeps_the_repositories():
    # Issue 13 item 3: switching a stack that already built to csm:imageRef must not delete its (protected) release
    # repository or its staging repository: both stay declared, with the same names and URNs; only the build goes.
    ref = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/csm@sha256:" + "d" * 64
    built = run_program("dev", stack_config("dev"))
    m = run_program("dev", stack_config("dev", **{"csm:imageRef": ref}))
    assert m.of_type("docker-build:index:Image") == [] and m.of_type("docker-build:index:Index") == []
    assert m.of_type("command:local:Command") == [], "nothing to scan"

    def repos(rec):
        return sorted((r.name, r.inputs["name"]) for r in rec.of_type("aws:ecr/repository:Repository"))

    assert repos(m) == repos(built) == [("csm-image-repo", "csm-dev"), ("csm-image-staging", "csm-dev-staging")]

    def policies(rec):
        return sorted(r.name for r in rec.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"))

    assert policies(m) == policies(built) == ["csm-image-lifecycle", "csm-image-staging-lifecycle"]
    assert m.outputs["imageRef"] == ref
    pulls = [s for s in policy_documents(m)["csm-roles-execution"]["Statement"] if s.get("Sid") == "PullOwnImage"]
    assert pulls[0]["Resource"] == f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/csm"


def test_existing_vpc_is_used_not_created():
    azs = {"subnet-0000000c": AZS[0], "subnet-0000000d": AZS[1]}
    m = run_program(
        "dev",
        stack_config(
            "dev",
            **{
                "csm:vpcId": "vpc-0123456789abcdef0",
                "csm:publicSubnetIds": ["subnet-0000000a", "subnet-0000000b"],
                "csm:privateSubnetIds": ["subnet-0000000c", "subnet-0000000d"],
            },
        ),
        CsmMocks(subnet_azs=azs),
    )
    assert m.of_type("aws:ec2/vpc:Vpc") == []
    assert m.one("aws:ecs/service:Service").inputs["networkConfiguration"]["subnets"] == [
        "subnet-0000000c",
        "subnet-0000000d",
    ]


def test_nothing_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    m = run_program("prod", stack_config("prod"))
    assert m.outputs["serviceUrl"]
