"""An IAM role for one Kubernetes ServiceAccount: IRSA (trust on the cluster's OIDC provider, pinned
to the ServiceAccount by ``sub`` and ``aud``) or EKS Pod Identity (trust on pods.eks.amazonaws.com,
pinned by the session tags EKS sets, plus the association). The policy documents are built by pure
functions so the tests can check every statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components import renamed

IdentityMode = Literal["irsa", "pod-identity"]


def irsa_trust(oidc_provider_arn: str, issuer: str, namespace: str, service_account: str) -> dict[str, Any]:
    """``issuer`` without the scheme: oidc.eks.<region>.amazonaws.com/id/<id>."""
    issuer = issuer.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceAccountViaIrsa",
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def pod_identity_trust(
    cluster_name: str, namespace: str, service_account: str, trusted_role_arns: Sequence[str] = ()
) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ServiceAccountViaPodIdentity",
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            # EKS tags each session with the pod's cluster, namespace and ServiceAccount.
            "Condition": {
                "StringEquals": {
                    "aws:RequestTag/eks-cluster-name": cluster_name,
                    "aws:RequestTag/kubernetes-namespace": namespace,
                    "aws:RequestTag/kubernetes-service-account": service_account,
                }
            },
        }
    ]
    if trusted_role_arns:
        statements.append(
            {
                "Sid": "TrustedRoles",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(trusted_role_arns)},
                # Role chaining from a Pod Identity session passes its session tags on: without sts:TagSession the
                # AssumeRole is denied (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html#id_session-tags_role-chaining).
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(kw_only=True)
class WorkloadRoleArgs:
    mode: IdentityMode
    cluster_name: pulumi.Input[str]
    namespace: str
    service_account: str
    oidc_provider_arn: pulumi.Input[str] | None = None  # irsa
    oidc_issuer: pulumi.Input[str] | None = None  # irsa
    statements: pulumi.Input[list] | None = None  # inline policy statements; None = no inline policy
    managed_policy_arns: Sequence[str] = field(default_factory=list)
    trusted_role_arns: Sequence[pulumi.Input[str]] = field(
        default_factory=list
    )  # pod-identity: other roles that may assume it
    description: str = ""
    associate: bool = True  # pod-identity: create the association (False when an EKS add-on creates its own)


class WorkloadRole(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: WorkloadRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:eks:WorkloadRole", name, None, renamed(opts, "csm:eks_irsa:WorkloadRole"))
        child = pulumi.ResourceOptions(parent=self)
        if args.mode == "irsa":
            if args.oidc_provider_arn is None or args.oidc_issuer is None:
                raise ValueError(f"{name}: IRSA needs the cluster's OIDC provider ARN and issuer")
            trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
                lambda a: json.dumps(irsa_trust(a[0], a[1], args.namespace, args.service_account))
            )
        else:
            trust = pulumi.Output.all(args.cluster_name, pulumi.Output.all(*args.trusted_role_arns)).apply(
                lambda a: json.dumps(pod_identity_trust(a[0], args.namespace, args.service_account, a[1]))
            )
        role = aws.iam.Role(
            name,
            assume_role_policy=trust,
            description=args.description or f"{args.namespace}/{args.service_account} ({args.mode})",
            opts=child,
        )
        if args.statements is not None:
            doc = pulumi.Output.from_input(args.statements).apply(
                lambda s: json.dumps({"Version": "2012-10-17", "Statement": s})
            )
            aws.iam.RolePolicy(name, role=role.id, policy=doc, opts=child)
        for i, arn in enumerate(args.managed_policy_arns):
            aws.iam.RolePolicyAttachment(f"{name}-{i}", role=role.name, policy_arn=arn, opts=child)
        if args.mode == "pod-identity" and args.associate:
            aws.eks.PodIdentityAssociation(
                name,
                cluster_name=args.cluster_name,
                namespace=args.namespace,
                service_account=args.service_account,
                role_arn=role.arn,
                opts=child,
            )
        self.role_arn = role.arn
        self.role_name = role.name
        self.register_outputs({"role_arn": self.role_arn})
