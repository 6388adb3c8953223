"""External Secrets Operator, installed from its Helm chart into its own PSA-restricted namespace.

With EKS Pod Identity the controller gets an IAM role that has no permissions of its own: the
service's role trusts it by ARN, and the service's SecretStore names that role (``role:``), so the
controller can read the service's secrets and nothing else. With IRSA the controller needs no AWS
identity at all: each SecretStore authenticates as its namespace's ServiceAccount.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from components import renamed
from components.eks.workload_role import WorkloadRole, WorkloadRoleArgs
from components.kubernetes.render import ESO_NAMESPACE, ESO_SERVICE_ACCOUNT

CHART = "external-secrets"
CHART_REPO = "https://charts.external-secrets.io"
CHART_VERSION = "0.18.2"  # serves external-secrets.io/v1 (ExternalSecret, SecretStore)

_CONTAINER_SC = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
_POD_SC = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def chart_values() -> dict[str, Any]:
    """Helm values: CRDs installed, every pod restricted (the namespace enforces it)."""
    hardened = {"securityContext": dict(_CONTAINER_SC), "podSecurityContext": dict(_POD_SC)}
    return {
        "installCRDs": True,
        "serviceAccount": {"create": True, "name": ESO_SERVICE_ACCOUNT},
        **hardened,
        "webhook": dict(hardened),
        "certController": dict(hardened),
    }


@dataclass(kw_only=True)
class ExternalSecretsArgs:
    identity_mode: Literal["irsa", "pod-identity"]
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    chart_version: str = CHART_VERSION


class ExternalSecretsOperator(pulumi.ComponentResource):
    release_name: pulumi.Output[str | None]
    controller_role_arn: pulumi.Output[str] | None
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: ExternalSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "csm:eks:ExternalSecretsOperator", name, None, renamed(opts, "csm:external_secrets:ExternalSecretsOperator")
        )
        child = pulumi.ResourceOptions(parent=self)
        psa = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "audit", "warn")}
        psa.update(
            {
                f"pod-security.kubernetes.io/{m}-version": f"v{args.kubernetes_version}"
                for m in ("enforce", "audit", "warn")
            }
        )
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": ESO_NAMESPACE, "labels": psa}, opts=child)

        self.controller_role_arn = None
        if args.identity_mode == "pod-identity":
            role = WorkloadRole(
                f"{name}-controller",
                WorkloadRoleArgs(
                    mode="pod-identity",
                    cluster_name=args.cluster_name,
                    namespace=ESO_NAMESPACE,
                    service_account=ESO_SERVICE_ACCOUNT,
                    description="External Secrets Operator controller: no permissions of its own; service roles trust it by ARN",
                ),
                opts=child,
            )
            self.controller_role_arn = role.role_arn

        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=CHART,
            chart=CHART,
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=ESO_NAMESPACE,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            wait_for_jobs=True,
            values=chart_values(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]),
        )
        self.release_name = self.release.name
        self.register_outputs({"release_name": self.release_name})
