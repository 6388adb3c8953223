"""Task IAM: execution and task roles separated and least-privilege; every policy parses and
no statement allows '*' actions on '*' resources."""

from __future__ import annotations

import json

import pytest

from harness.pulumi_mocks import (
    ACCOUNT,
    CsmMocks,
    as_list,
    assert_no_star_on_star,
    assert_well_formed,
    construct,
    install,
    policy_documents,
)

install(CsmMocks())

from components.ecs.task_roles import TaskRoles, TaskRolesArgs, assume_role_policy, execution_policy, task_policy  # noqa: E402

LOG_GROUP = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/ecs/csm-dev"
SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:csm/dev/db-Ab12Cd"
REPO = f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/csm"


def statements(doc: dict) -> list[dict]:
    return doc["Statement"]


def make(**overrides):
    args = dict(
        log_group_arn=LOG_GROUP,
        region="eu-west-1",
        secret_arns=[SECRET],
        kms_key_arns=[],
        ecr_repository_arn=REPO,
        keyspaces=False,
        keyspace="csm",
        execute_command=False,
    )
    return TaskRoles("csm-roles", TaskRolesArgs(**{**args, **overrides}))


@pytest.fixture(scope="module")
def external():
    return construct(make)[0]


@pytest.fixture(scope="module")
def keyspaces():
    return construct(lambda: make(keyspaces=True, keyspace="csm"))[0]


def test_execution_and_task_roles_are_separate(external):
    roles = [r.name for r in external.of_type("aws:iam/role:Role")]
    assert sorted(roles) == ["csm-roles-execution", "csm-roles-task"]


def test_roles_trust_only_ecs_tasks_of_this_account(external):
    for role in external.of_type("aws:iam/role:Role"):
        trust = json.loads(role.inputs["assumeRolePolicy"])
        st = trust["Statement"][0]
        assert st["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}, role.name
        assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT, role.name


def test_every_policy_document_parses(external, keyspaces):
    docs = {**policy_documents(external), **{f"ks:{k}": v for k, v in policy_documents(keyspaces).items()}}
    for role in external.of_type("aws:iam/role:Role"):
        docs[f"trust:{role.name}"] = json.loads(role.inputs["assumeRolePolicy"])
    assert docs
    for name, doc in docs.items():
        assert_well_formed(name, doc)


def test_no_statement_allows_star_on_star(external, keyspaces):
    for name, doc in {**policy_documents(external), **policy_documents(keyspaces)}.items():
        assert_no_star_on_star(name, doc)


def test_execution_role_reads_only_the_named_secrets(external):
    doc = policy_documents(external)["csm-roles-execution"]
    secret_statements = [s for s in statements(doc) if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    assert [as_list(s["Resource"]) for s in secret_statements] == [[SECRET]], (
        "csm-roles-execution: only the named secret"
    )


def test_execution_role_writes_only_its_own_log_group(external):
    doc = policy_documents(external)["csm-roles-execution"]
    logs = [s for s in statements(doc) if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert [s["Resource"] for s in logs] == [f"{LOG_GROUP}:log-stream:*"]


def test_execution_role_pulls_only_its_own_repository(external):
    doc = policy_documents(external)["csm-roles-execution"]
    pulls = [s for s in statements(doc) if "ecr:BatchGetImage" in as_list(s["Action"])]
    assert [s["Resource"] for s in pulls] == [REPO]


def test_task_role_has_no_policy_without_keyspaces(external):
    assert "csm-roles-task" not in policy_documents(external), (
        "csm-roles-task: nothing to grant with external Cassandra"
    )


def test_task_role_gets_only_its_keyspace_when_keyspaces_is_used(keyspaces):
    doc = policy_documents(keyspaces)["csm-roles-task"]
    resources = [r for s in statements(doc) for r in as_list(s["Resource"])]
    assert all(r.startswith(f"arn:aws:cassandra:eu-west-1:{ACCOUNT}:/keyspace/") for r in resources), resources
    assert f"arn:aws:cassandra:eu-west-1:{ACCOUNT}:/keyspace/csm/" in resources


def test_keyspaces_grants_stay_off_the_execution_role(keyspaces):
    doc = policy_documents(keyspaces)["csm-roles-execution"]
    assert not [s for s in statements(doc) if any(a.startswith("cassandra:") for a in as_list(s["Action"]))]


def test_no_secret_statement_without_secrets():
    doc = execution_policy(
        log_group_arn=LOG_GROUP, secret_arns=[], kms_key_arns=[], ecr_repository_arn=None, region="eu-west-1"
    )
    assert [s["Sid"] for s in statements(doc)] == ["OwnLogGroup"]


def test_kms_decrypt_only_through_secrets_manager():
    doc = execution_policy(
        log_group_arn=LOG_GROUP,
        secret_arns=[SECRET],
        kms_key_arns=[f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/abc"],
        ecr_repository_arn=None,
        region="eu-west-1",
    )
    kms = next(s for s in statements(doc) if s["Action"] == "kms:Decrypt")
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}


def test_exec_command_is_a_task_role_grant_only_when_asked():
    assert (
        task_policy(keyspaces=False, keyspace="csm", region="eu-west-1", account_id=ACCOUNT, execute_command=False)
        is None
    )
    doc = task_policy(keyspaces=False, keyspace="csm", region="eu-west-1", account_id=ACCOUNT, execute_command=True)
    assert_no_star_on_star("exec", doc)


def test_star_on_star_check_catches_a_bad_statement():
    with pytest.raises(AssertionError, match=r"allows"):
        assert_no_star_on_star(
            "bad", {"Statement": [{"Sid": "X", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        )


def test_assume_role_policy_shape():
    assert_well_formed("trust", assume_role_policy(ACCOUNT))
