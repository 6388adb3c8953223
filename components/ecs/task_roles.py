"""Task IAM: an execution role (what ECS needs to start the task) and a task role (what the
service itself may do), separate and least-privilege. The policy documents are built by pure
functions so the tests can check every statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import renamed
from components.aws.policies import secrets_statements, task_policy


def assume_role_policy(account_id: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
                # confused-deputy guard: only tasks of this account may assume the role
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def execution_policy(
    *,
    log_group_arn: str,
    secret_arns: Sequence[str],
    kms_key_arns: Sequence[str],
    ecr_repository_arn: str | None,
    region: str,
) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn.removesuffix(':*')}:log-stream:*",
        }
    ]
    if ecr_repository_arn:
        statements += [
            # GetAuthorizationToken has no resource-level permissions; the action is the whole grant.
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Sid": "PullOwnImage",
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": ecr_repository_arn,
            },
        ]
    statements += secrets_statements(
        secret_arns=secret_arns, kms_key_arns=kms_key_arns, region=region, actions="secretsmanager:GetSecretValue"
    )
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(kw_only=True)
class TaskRolesArgs:
    log_group_arn: pulumi.Input[str]
    region: str
    secret_arns: Sequence[pulumi.Input[str]]
    kms_key_arns: Sequence[str]
    ecr_repository_arn: pulumi.Input[str] | None
    keyspaces: bool
    keyspace: str
    execute_command: bool


class TaskRoles(pulumi.ComponentResource):
    execution_role_arn: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TaskRolesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:ecs:TaskRoles", name, None, renamed(opts, "csm:iam:TaskRoles"))
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        trust = account.apply(lambda a: json.dumps(assume_role_policy(a)))

        execution = aws.iam.Role(
            f"{name}-execution",
            assume_role_policy=trust,
            description="ECS: pull the image, read the named secrets, write the own log group",
            opts=child,
        )
        exec_doc = pulumi.Output.all(
            args.log_group_arn, pulumi.Output.all(*args.secret_arns), args.ecr_repository_arn
        ).apply(
            lambda a: json.dumps(
                execution_policy(
                    log_group_arn=a[0],
                    secret_arns=a[1],
                    kms_key_arns=args.kms_key_arns,
                    ecr_repository_arn=a[2],
                    region=args.region,
                )
            )
        )
        aws.iam.RolePolicy(f"{name}-execution", role=execution.id, policy=exec_doc, opts=child)

        task = aws.iam.Role(
            f"{name}-task",
            assume_role_policy=trust,
            description="CSM service: only what the service itself calls",
            opts=child,
        )
        task_doc = account.apply(
            lambda a: task_policy(
                keyspaces=args.keyspaces,
                keyspace=args.keyspace,
                region=args.region,
                account_id=a,
                execute_command=args.execute_command,
            )
        )
        if args.keyspaces or args.execute_command:
            aws.iam.RolePolicy(f"{name}-task", role=task.id, policy=task_doc.apply(json.dumps), opts=child)

        self.execution_role_arn = execution.arn
        self.task_role_arn = task.arn
        self.register_outputs({"execution_role_arn": self.execution_role_arn, "task_role_arn": self.task_role_arn})
