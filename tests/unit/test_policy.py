"""CrossGuard validators (policy/csm_policies.py), called with compliant and non-compliant resource args."""

from __future__ import annotations

import copy
import json
import re

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policy import csm_policies as p

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/csm@{DIGEST}"


def violations(validator, resource_type: str, props: dict, name: str = "csm-res", parents: str = "") -> list[str]:
    """Calls a validator the way the policy engine does: props behind pulumi_policy's unknown-checking proxy."""
    urn = f"urn:pulumi:dev::csm::{parents}{resource_type}::{name}"
    args = ResourceValidationArgs(resource_type, unknown_checking_proxy(copy.deepcopy(props)), urn, name, None, None)
    found: list[str] = []

    def report(message, urn=None):
        assert urn == args.urn, "violations name the resource"
        found.append(message)

    assert validator(args, report) is None
    return found


# ------------------------------------------------------------------ ECS task definitions


def container(**overrides) -> dict:
    c = {
        "name": "csm",
        "image": IMAGE,
        "user": "10001:10001",
        "readonlyRootFilesystem": True,
        "essential": True,
        "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
        "environment": [
            {"name": "CSM_CASSANDRA_KEYSPACE", "value": "csm"},
            {"name": "CSM_CASSANDRA_PASSWORD_FILE", "value": "/run/secrets/cassandra"},
            {"name": "CSM_CA_SECRET_ARN", "value": "arn:aws:secretsmanager:eu-west-1:1:secret:ca"},
        ],
        "secrets": [
            {
                "name": "CSM_CASSANDRA_PASSWORD",
                "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:csm/cassandra",
            }
        ],
    }
    c.update(overrides)
    return c


def task(*containers: dict) -> dict:
    return {
        "family": "csm",
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "512",
        "memory": "1024",
        "containerDefinitions": json.dumps(list(containers) or [container()]),
    }


ECS_VALIDATORS = [p.ecs_task_read_only_non_root, p.ecs_task_no_plaintext_secrets, p.images_by_digest]


@pytest.mark.parametrize("validator", ECS_VALIDATORS)
def test_compliant_task_definition_passes(validator):
    assert violations(validator, p.ECS_TASK, task()) == []


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"readonlyRootFilesystem": False}, "must set readonlyRootFilesystem: true"),
        ({"readonlyRootFilesystem": None}, "must set readonlyRootFilesystem: true"),
        ({"user": None}, "must set user to a non-root uid"),
        ({"user": "0"}, "must set user to a non-root uid"),
        ({"user": "root:root"}, "must set user to a non-root uid"),
        ({"user": "0:10001"}, "must set user to a non-root uid"),
        ({"privileged": True}, "must not be privileged"),
    ],
)
def test_task_definition_must_be_read_only_non_root(override, expected):
    found = violations(p.ecs_task_read_only_non_root, p.ECS_TASK, task(container(**override)), name="csm-task")
    assert len(found) == 1 and expected in found[0] and "csm-task: container csm" in found[0], found


def test_every_container_of_a_task_is_checked():
    found = violations(
        p.ecs_task_read_only_non_root,
        p.ECS_TASK,
        task(container(), container(name="sidecar", user=None, readonlyRootFilesystem=False)),
    )
    assert len(found) == 2 and all("container sidecar" in m for m in found)


@pytest.mark.parametrize(
    "name",
    [
        "CSM_CASSANDRA_PASSWORD",
        "DB_PASSWD",
        "API_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "CSM_CA_PRIVATE_KEY",
        "STRIPE_APIKEY",
        "client_secret",
        "GITHUB_TOKEN",
        "SERVICE_CREDENTIALS",
        "CSM_ADMINPASSWORD",
    ],
)
def test_secret_looking_plaintext_env_var_is_a_violation(name):
    c = container(environment=[{"name": name, "value": "hunter2"}])
    found = violations(p.ecs_task_no_plaintext_secrets, p.ECS_TASK, task(c))
    assert len(found) == 1 and name in found[0] and "move it to `secrets`" in found[0]
    assert "hunter2" not in found[0], "the violation never echoes the secret value"


@pytest.mark.parametrize(
    "name",
    [
        "CSM_CASSANDRA_KEYSPACE",
        "CSM_CASSANDRA_PASSWORD_FILE",
        "CSM_CA_SECRET_ARN",
        "CSM_LOG_LEVEL",
        "MONKEY_MODE",
        "TOKENIZER",
        "CSM_SECRET_NAME",
    ],
)
def test_ordinary_or_reference_env_var_names_pass(name):
    c = container(environment=[{"name": name, "value": "x"}])
    assert violations(p.ecs_task_no_plaintext_secrets, p.ECS_TASK, task(c)) == []


@pytest.mark.parametrize(
    "defs, expected",
    [
        ("not json", "is not valid JSON"),
        ('{"name": "csm"}', "must be a JSON list of container objects"),
        ('["csm"]', "must be a JSON list of container objects"),
    ],
)
def test_malformed_container_definitions_are_violations(defs, expected):
    props = dict(task(), containerDefinitions=defs)
    for validator in ECS_VALIDATORS:
        found = violations(validator, p.ECS_TASK, props)
        assert len(found) == 1 and expected in found[0], (validator.__name__, found)


def test_unknown_container_definitions_defer_to_the_engine():
    # During preview an image digest from the build is unknown; the engine turns this error into
    # "can't run policy during preview" and enforces the policy again on `pulumi up`.
    props = dict(task(), containerDefinitions=UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        violations(p.images_by_digest, p.ECS_TASK, props)


# ------------------------------------------------------------------ images by digest


@pytest.mark.parametrize(
    "image",
    [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/csm:1.0.0",
        "127.0.0.1:5000/csm:latest",
        "csm",
        f"csm@sha256:{'0' * 63}",
        f"csm@sha256:{'A' * 64}",
        None,
    ],
)
def test_ecs_image_must_be_pinned_by_digest(image):
    found = violations(p.images_by_digest, p.ECS_TASK, task(container(image=image)))
    assert len(found) == 1 and "not referenced by digest" in found[0]


def test_tag_and_digest_together_is_by_digest():
    img = f"127.0.0.1:5000/csm:1.0.0@{DIGEST}"
    assert violations(p.images_by_digest, p.ECS_TASK, task(container(image=img))) == []


# ------------------------------------------------------------------ ECR, CloudWatch


def test_ecr_repository_immutable_with_scan_on_push_passes():
    props = {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True}}
    assert violations(p.ecr_immutable_scan_on_push, p.ECR_REPOSITORY, props) == []


@pytest.mark.parametrize(
    "props, expected",
    [
        ({"imageScanningConfiguration": {"scanOnPush": True}}, "(got MUTABLE (default))"),
        ({"imageTagMutability": "MUTABLE", "imageScanningConfiguration": {"scanOnPush": True}}, "must be IMMUTABLE"),
        ({"imageTagMutability": "IMMUTABLE"}, "scanOnPush must be true"),
        (
            {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": False}},
            "scanOnPush must be true",
        ),
    ],
)
def test_ecr_repository_violations(props, expected):
    found = violations(p.ecr_immutable_scan_on_push, p.ECR_REPOSITORY, props, name="csm-repo")
    assert len(found) == 1 and expected in found[0] and found[0].startswith("csm-repo:")


def test_ecr_exclusion_of_a_literal_cache_tag_passes():
    props = {
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutabilityExclusionFilters": [{"filter": "buildcache", "filterType": "WILDCARD"}],
    }
    assert violations(p.ecr_immutable_scan_on_push, p.ECR_REPOSITORY, props) == []


@pytest.mark.parametrize("pattern", ["*", "v*", "build*cache", ""])
def test_ecr_wildcard_exclusion_is_a_violation(pattern):
    props = {
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutabilityExclusionFilters": [
            {"filter": "buildcache", "filterType": "WILDCARD"},
            {"filter": pattern, "filterType": "WILDCARD"},
        ],
    }
    found = violations(p.ecr_immutable_scan_on_push, p.ECR_REPOSITORY, props)
    assert len(found) == 1 and "must be one literal tag" in found[0]


def test_log_group_with_retention_passes():
    assert violations(p.log_group_retention, p.LOG_GROUP, {"retentionInDays": 30}) == []


@pytest.mark.parametrize("props", [{}, {"retentionInDays": 0}, {"retentionInDays": None}])
def test_log_group_without_retention_is_a_violation(props):
    found = violations(p.log_group_retention, p.LOG_GROUP, props, name="csm-logs")
    assert len(found) == 1 and "csm-logs: retentionInDays must be set" in found[0]


# ------------------------------------------------------------------ security groups

LB_PARENT = "csm:ecs:LoadBalancer$"


def sg(*ingress: dict, **extra) -> dict:
    return {
        "description": "test",
        "ingress": list(ingress),
        "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}],
        **extra,
    }


def rule(port_from: int, port_to: int, protocol: str = "tcp", cidrs=("0.0.0.0/0",), ipv6=()) -> dict:
    return {
        "protocol": protocol,
        "fromPort": port_from,
        "toPort": port_to,
        "cidrBlocks": list(cidrs),
        "ipv6CidrBlocks": list(ipv6),
    }


def test_load_balancer_sg_may_open_80_and_443_to_the_world():
    props = sg(rule(80, 80), rule(443, 443), rule(443, 443, cidrs=(), ipv6=("::/0",)))
    assert violations(p.no_public_ingress, p.SECURITY_GROUP, props, parents=LB_PARENT) == []


def test_load_balancer_role_tag_also_marks_the_lb_sg():
    props = sg(rule(443, 443), tags={"csm:role": "load-balancer"})
    assert violations(p.no_public_ingress, p.SECURITY_GROUP, props) == []


def test_private_ingress_and_public_egress_pass():
    props = sg(
        rule(8000, 8000, cidrs=("10.0.0.0/16",)),
        {"protocol": "tcp", "fromPort": 8000, "toPort": 8000, "securityGroups": ["sg-123"]},
    )
    assert violations(p.no_public_ingress, p.SECURITY_GROUP, props, parents="csm:ecs:Service$") == []


@pytest.mark.parametrize(
    "ingress, parents, expected",
    [
        (rule(443, 443), "csm:ecs:Service$", "only the load balancer may accept traffic from the internet"),
        (rule(8000, 8000), LB_PARENT, "only TCP 80 and 443"),
        (rule(22, 22), "", "only TCP 80 and 443"),
        (rule(80, 443), LB_PARENT, "only TCP 80 and 443"),
        (rule(0, 0, protocol="-1"), LB_PARENT, "ingress -1 0-0 from 0.0.0.0/0"),
        (rule(443, 443, protocol="udp"), LB_PARENT, "only TCP 80 and 443"),
        (rule(9042, 9042, cidrs=(), ipv6=("::/0",)), "", "from ::/0"),
    ],
)
def test_public_ingress_violations_on_security_group(ingress, parents, expected):
    found = violations(p.no_public_ingress, p.SECURITY_GROUP, sg(ingress), name="csm-sg", parents=parents)
    assert len(found) == 1 and expected in found[0] and found[0].startswith("csm-sg:"), found


def test_vpc_ingress_rule_resource_is_checked():
    public_443 = {
        "securityGroupId": "sg-1",
        "cidrIpv4": "0.0.0.0/0",
        "ipProtocol": "tcp",
        "fromPort": 443,
        "toPort": 443,
    }
    assert violations(p.no_public_ingress, p.SG_INGRESS_RULE, public_443, parents=LB_PARENT) == []
    found = violations(p.no_public_ingress, p.SG_INGRESS_RULE, public_443, parents="csm:ecs:Service$")
    assert len(found) == 1
    all_ports = dict(public_443, ipProtocol="-1", fromPort=None, toPort=None)
    assert len(violations(p.no_public_ingress, p.SG_INGRESS_RULE, all_ports, parents=LB_PARENT)) == 1
    private = dict(public_443, cidrIpv4="10.0.0.0/8", fromPort=8000, toPort=8000)
    assert violations(p.no_public_ingress, p.SG_INGRESS_RULE, private) == []


def test_ec2_security_group_rule_resource_is_checked():
    ingress = {
        "type": "ingress",
        "securityGroupId": "sg-1",
        "protocol": "tcp",
        "fromPort": 5432,
        "toPort": 5432,
        "cidrBlocks": ["0.0.0.0/0"],
    }
    assert len(violations(p.no_public_ingress, p.SG_RULE, ingress)) == 1
    egress = dict(ingress, type="egress", fromPort=0, toPort=0, protocol="-1")
    assert violations(p.no_public_ingress, p.SG_RULE, egress) == []


# ------------------------------------------------------------------ Kubernetes


def pod_spec(**container_overrides) -> dict:
    c = {
        "name": "csm",
        "image": IMAGE,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    c.update(container_overrides)
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [c],
    }


def deployment(spec: dict) -> dict:
    return {
        "metadata": {"name": "csm"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "csm"}},
            "template": {"metadata": {"labels": {"app": "csm"}}, "spec": spec},
        },
    }


WORKLOADS = {
    "kubernetes:apps/v1:Deployment": deployment,
    "kubernetes:apps/v1:StatefulSet": deployment,
    "kubernetes:apps/v1:DaemonSet": deployment,
    "kubernetes:batch/v1:Job": lambda s: {"spec": {"template": {"spec": s}}},
    "kubernetes:batch/v1:CronJob": lambda s: {
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": s}}}}
    },
    "kubernetes:core/v1:Pod": lambda s: {"spec": s},
}


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_restricted_pod_passes_for_every_workload_kind(kind):
    props = WORKLOADS[kind](pod_spec())
    assert violations(p.kubernetes_pod_restricted, kind, props) == []
    assert violations(p.images_by_digest, kind, props) == []


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_unrestricted_pod_is_caught_for_every_workload_kind(kind):
    props = WORKLOADS[kind]({"containers": [{"name": "csm", "image": "csm:latest"}]})
    found = violations(p.kubernetes_pod_restricted, kind, props)
    assert len(found) == 5, found  # runAsNonRoot, escalation, drop ALL, read-only root, seccomp
    assert len(violations(p.images_by_digest, kind, props)) == 1


def _without(d: dict, *path: str) -> dict:
    d = copy.deepcopy(d)
    node = d
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return d


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda s: _without(s, "securityContext", "runAsNonRoot"), "runAsNonRoot: true"),
        (lambda s: {**s, "securityContext": {**s["securityContext"], "runAsUser": 0}}, "must not set runAsUser: 0"),
        (
            lambda s: _without(s, "containers", 0, "securityContext", "allowPrivilegeEscalation"),
            "allowPrivilegeEscalation: false",
        ),
        (lambda s: _without(s, "containers", 0, "securityContext", "capabilities"), "must drop ALL capabilities"),
        (
            lambda s: _without(s, "containers", 0, "securityContext", "readOnlyRootFilesystem"),
            "readOnlyRootFilesystem: true",
        ),
        (lambda s: _without(s, "securityContext", "seccompProfile"), "seccompProfile type RuntimeDefault (got None)"),
        (
            lambda s: {**s, "securityContext": {**s["securityContext"], "seccompProfile": {"type": "Unconfined"}}},
            "(got 'Unconfined')",
        ),
        (lambda s: {**s, "hostNetwork": True}, "must not set hostNetwork: true"),
    ],
)
def test_each_restricted_rule_is_enforced(mutate, expected):
    found = violations(
        p.kubernetes_pod_restricted, "kubernetes:apps/v1:Deployment", deployment(mutate(pod_spec())), name="csm-deploy"
    )
    assert len(found) == 1 and expected in found[0] and found[0].startswith("csm-deploy:"), found


def test_container_level_settings_override_the_pod_level():
    spec = pod_spec()
    spec["containers"][0]["securityContext"]["runAsNonRoot"] = False
    found = violations(p.kubernetes_pod_restricted, "kubernetes:apps/v1:Deployment", deployment(spec))
    assert len(found) == 1 and "runAsNonRoot" in found[0]


def test_capabilities_beyond_net_bind_service_are_rejected():
    spec = pod_spec()
    spec["containers"][0]["securityContext"]["capabilities"] = {
        "drop": ["ALL"],
        "add": ["NET_BIND_SERVICE", "SYS_ADMIN"],
    }
    found = violations(p.kubernetes_pod_restricted, "kubernetes:apps/v1:Deployment", deployment(spec))
    assert len(found) == 1 and "SYS_ADMIN" in found[0]


def test_init_containers_are_checked_too():
    spec = pod_spec()
    spec["initContainers"] = [{"name": "migrate", "image": "csm:1.0"}]
    kind = "kubernetes:apps/v1:Deployment"
    found = violations(p.kubernetes_pod_restricted, kind, deployment(spec))
    # runAsNonRoot and seccomp come from the pod level; the container-level settings are missing.
    assert len(found) == 3 and all("initContainer migrate" in m for m in found), found
    found = violations(p.images_by_digest, kind, deployment(spec))
    assert len(found) == 1 and "initContainer migrate image 'csm:1.0'" in found[0]


def test_non_workload_resources_are_ignored():
    for validator in (
        p.kubernetes_pod_restricted,
        p.images_by_digest,
        p.ecs_task_read_only_non_root,
        p.no_public_ingress,
        p.log_group_retention,
        p.ecr_immutable_scan_on_push,
    ):
        assert violations(validator, "kubernetes:core/v1:Service", {"spec": {"ports": [{"port": 80}]}}) == []
        assert violations(validator, "aws:s3/bucket:Bucket", {"bucket": "x"}) == []


# ------------------------------------------------------------------ the pack


def test_pack_has_every_policy_mandatory_with_unique_names():
    policies = p.build_policies()
    names = [pol.name for pol in policies]
    assert names == sorted(set(names), key=names.index)
    assert set(names) == {
        "ecs-task-read-only-non-root",
        "ecs-task-no-plaintext-secrets",
        "ecr-immutable-scan-on-push",
        "log-group-retention",
        "no-public-ingress",
        "kubernetes-pod-restricted",
        "images-by-digest",
    }
    assert all(pol.enforcement_level is EnforcementLevel.MANDATORY for pol in policies)


# ------------------------------------------------------------------ justified exceptions

EXCEPTIONS = """
exceptions:
  - policy: log-group-retention
    resource: csm-audit-logs
    reason: the audit trail is kept forever by the compliance team's decision AUD-12
    expires: 2026-06-30
"""


def test_exception_waives_one_policy_for_one_resource_until_it_expires():
    import yaml

    entries = p.parse_exceptions(yaml.safe_load(EXCEPTIONS))
    before, after = p.dt.date(2026, 6, 30), p.dt.date(2026, 7, 1)
    policy = {pol.name: pol for pol in p.build_policies(entries, today=before)}["log-group-retention"]

    def run(pol, name):
        found: list[str] = []
        args = ResourceValidationArgs(
            p.LOG_GROUP, unknown_checking_proxy({}), f"urn:pulumi:dev::csm::{p.LOG_GROUP}::{name}", name, None, None
        )
        pol.validate(args, lambda message, urn=None: found.append(message))
        return found

    assert run(policy, "csm-audit-logs") == []
    assert len(run(policy, "csm-other-logs")) == 1, "only the named resource is waived"
    expired = {pol.name: pol for pol in p.build_policies(entries, today=after)}["log-group-retention"]
    [message] = run(expired, "csm-audit-logs")
    assert "exception expired on 2026-06-30: the audit trail is kept forever" in message


@pytest.mark.parametrize(
    "text, error",
    [
        ("- policy: x\n", "single key 'exceptions'"),
        ("exceptions: {}\n", "'exceptions' must be a list"),
        ("exceptions:\n  - {policy: log-group-retention, resource: r, reason: long enough reason}\n", "needs exactly"),
        (
            "exceptions:\n  - {policy: no-such-policy, resource: r, reason: long enough reason, expires: 2026-01-01}\n",
            "unknown policy 'no-such-policy'",
        ),
        (
            "exceptions:\n  - {policy: log-group-retention, resource: r, reason: short, expires: 2026-01-01}\n",
            "'reason' must say why",
        ),
        (
            "exceptions:\n  - {policy: log-group-retention, resource: r, reason: long enough reason, expires: soon}\n",
            "'expires' must be a date",
        ),
    ],
)
def test_malformed_exceptions_are_rejected(text, error):
    import yaml

    with pytest.raises(p.ExceptionsError, match=re.escape(error)):
        p.parse_exceptions(yaml.safe_load(text))


def test_shipped_exceptions_file_is_valid():
    path = p.Path(p.__file__).with_name("exceptions.yaml")
    assert all(e.expires >= p.dt.date.today() for e in p.load_exceptions(path))
