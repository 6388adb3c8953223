"""IAM policy documents both AWS targets build: the service's own permissions (Keyspaces, ECS Exec)
and read access to exactly the named secrets. Pure functions, so the tests can check every statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def secrets_statements(
    *, secret_arns: Sequence[str], kms_key_arns: Sequence[str], region: str, actions: str | list[str]
) -> list[dict[str, Any]]:
    """``actions`` on exactly the named secrets, and kms:Decrypt with the given keys through Secrets Manager only."""
    if not secret_arns:
        return []
    statements: list[dict[str, Any]] = [
        {"Sid": "NamedSecretsOnly", "Effect": "Allow", "Action": actions, "Resource": sorted(secret_arns)}
    ]
    if kms_key_arns:
        statements.append(
            {
                "Sid": "DecryptSecrets",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": sorted(kms_key_arns),
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            }
        )
    return statements


def secrets_policy(*, secret_arns: Sequence[str], kms_key_arns: Sequence[str], region: str) -> list[dict[str, Any]]:
    """What External Secrets Operator calls to read the named secrets."""
    return secrets_statements(
        secret_arns=secret_arns,
        kms_key_arns=kms_key_arns,
        region=region,
        actions=["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
    )


def task_policy(
    *,
    keyspaces: bool,
    keyspace: str,
    region: str,
    account_id: str,
    execute_command: bool,
) -> dict[str, Any] | None:
    """None when the service needs no AWS permissions at all."""
    statements: list[dict[str, Any]] = []
    if keyspaces:
        base = f"arn:aws:cassandra:{region}:{account_id}:/keyspace"
        statements += [
            {
                # Create: the service runs its own migrations (CREATE KEYSPACE/TABLE IF NOT EXISTS) at start
                "Sid": "OwnKeyspace",
                "Effect": "Allow",
                "Action": ["cassandra:Select", "cassandra:Modify", "cassandra:Create"],
                "Resource": [f"{base}/{keyspace}/", f"{base}/{keyspace}/table/*"],
            },
            {
                # the driver reads the system keyspaces for topology and schema
                "Sid": "SystemKeyspacesReadOnly",
                "Effect": "Allow",
                "Action": "cassandra:Select",
                "Resource": [f"{base}/system*"],
            },
        ]
    if execute_command:
        statements.append(
            {
                "Sid": "EcsExec",
                "Effect": "Allow",
                "Action": [
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements} if statements else None
