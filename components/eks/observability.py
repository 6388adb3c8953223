"""CloudWatch Container Insights on EKS: the amazon-cloudwatch-observability add-on, its agent's
IAM role (CloudWatchAgentServerPolicy, through IRSA or Pod Identity), and a lookup of the ALB the
load balancer controller made for the Ingress, so the ECS alarm set (components/aws/alarms.py) can
watch it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components import renamed
from components.eks.workload_role import WorkloadRole, WorkloadRoleArgs

ADDON = "amazon-cloudwatch-observability"
AGENT_NAMESPACE = "amazon-cloudwatch"
AGENT_SERVICE_ACCOUNT = "cloudwatch-agent"
AGENT_POLICY = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"


def application_log_group(cluster_name: str) -> str:
    return f"/aws/containerinsights/{cluster_name}/application"


def dashboard_url(region: str, cluster_name: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#container-insights:performance/EKS:Cluster?~(query~(controls~(CW*3a*3aEKS.cluster~(~'{cluster_name}))))"
    )


@dataclass(kw_only=True)
class ContainerInsightsArgs:
    identity_mode: Literal["irsa", "pod-identity"]
    cluster_name: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str] | None = None
    oidc_issuer: pulumi.Input[str] | None = None


class ContainerInsights(pulumi.ComponentResource):
    addon_name: pulumi.Output[str]
    agent_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerInsightsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "csm:eks:ContainerInsights", name, None, renamed(opts, "csm:eks_observability:ContainerInsights")
        )
        child = pulumi.ResourceOptions(parent=self)
        role = WorkloadRole(
            f"{name}-agent",
            WorkloadRoleArgs(
                mode=args.identity_mode,
                cluster_name=args.cluster_name,
                namespace=AGENT_NAMESPACE,
                service_account=AGENT_SERVICE_ACCOUNT,
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                managed_policy_arns=[AGENT_POLICY],
                associate=False,
                description="CloudWatch agent of the amazon-cloudwatch-observability add-on",
            ),
            opts=child,
        )
        identity: dict = (
            {
                "pod_identity_associations": [
                    aws.eks.AddonPodIdentityAssociationArgs(
                        role_arn=role.role_arn, service_account=AGENT_SERVICE_ACCOUNT
                    )
                ]
            }
            if args.identity_mode == "pod-identity"
            else {"service_account_role_arn": role.role_arn}
        )
        addon = aws.eks.Addon(
            name,
            cluster_name=args.cluster_name,
            addon_name=ADDON,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            **identity,
            opts=child,
        )
        self.addon_name = addon.addon_name
        self.agent_role_arn = role.role_arn
        self.register_outputs({"addon_name": self.addon_name, "agent_role_arn": self.agent_role_arn})


def ingress_alb_suffixes(
    hostname: pulumi.Output[str | None],
    *,
    load_balancer_name: str,
    cluster_name: pulumi.Input[str],
    namespace: str,
    ingress_name: str,
    opts: pulumi.InvokeOptions | None = None,
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """ARN suffixes of the Ingress's ALB and target group, looked up once the Ingress has an address
    (unknown during a first preview). The controller names the ALB from the load-balancer-name
    annotation and tags its target groups with the Ingress (``ingress.k8s.aws/stack``)."""

    def lookup(args: list) -> tuple[str, str]:
        host, cluster = args
        if not host:
            raise pulumi.RunError(
                f"Ingress {namespace}/{ingress_name} has no load balancer address: is the AWS Load Balancer Controller installed?"
            )
        lb = aws.lb.get_load_balancer(name=load_balancer_name, opts=opts)
        tg = aws.lb.get_target_group(
            tags={"ingress.k8s.aws/stack": f"{namespace}/{ingress_name}", "elbv2.k8s.aws/cluster": cluster}, opts=opts
        )
        return lb.arn_suffix, tg.arn_suffix

    found = pulumi.Output.all(hostname, cluster_name).apply(lookup)
    return found.apply(lambda f: f[0]), found.apply(lambda f: f[1])
