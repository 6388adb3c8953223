"""The EKS cluster CSM runs on, and the Kubernetes provider for it.

``existing``: the cluster named in config; its kubeconfig comes from config (a secret) and its
OIDC issuer from the EKS API (IRSA roles trust the IAM OIDC provider of that issuer, which the
cluster's owners have created). ``create``: a VPC (components/aws/network.py), a pulumi-eks cluster
(API authentication, OIDC provider, VPC CNI with NetworkPolicy enforcement, control-plane logs)
and either a managed node group (Graviton or x86, IMDSv2 with hop limit 1 so pods cannot borrow
the node role, encrypted gp3 root volumes) or a Fargate profile.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components import renamed
from components.aws.network import Network, NetworkArgs

AMI_TYPES = {"arm64": "AL2023_ARM_64_STANDARD", "x86_64": "AL2023_x86_64_STANDARD"}
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
CONTROL_PLANE_LOGS = ["api", "audit", "authenticator"]
# Nodes are scaled by the Cluster Autoscaler (managed node groups tag their Auto Scaling group for its auto-discovery:
# k8s.io/cluster-autoscaler/enabled and k8s.io/cluster-autoscaler/<cluster>; https://docs.aws.amazon.com/eks/latest/best-practices/cas.html).
AUTOSCALER_CHART = "cluster-autoscaler"
AUTOSCALER_REPO = "https://kubernetes.github.io/autoscaler"
AUTOSCALER_CHART_VERSION = "9.38.0"
AUTOSCALER_NAMESPACE = "kube-system"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
# The HPA reads pod CPU/memory from the metrics API: metrics-server, an EKS community add-on.
METRICS_SERVER_ADDON = "metrics-server"


def cluster_autoscaler_policy(cluster_name: str) -> list[dict]:
    """What the Cluster Autoscaler calls on AWS: describe anything, resize only this cluster's node groups."""
    return [
        {
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                "eks:DescribeNodegroup",
            ],
            "Resource": "*",  # Describe* have no resource-level permissions
        },
        {
            "Sid": "ResizeOwnNodeGroups",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "Resource": "*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        },
    ]


def cluster_autoscaler_values(cluster_name: str, region: str | None, kubernetes_version: str, role_arn: str) -> dict:
    return {
        "cloudProvider": "aws",
        "awsRegion": region,  # pods cannot reach IMDS (hop limit 1), so the region is given
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": f"v{kubernetes_version}.0"},  # the autoscaler's minor version follows the cluster's
        "rbac": {
            "serviceAccount": {
                "create": True,
                "name": AUTOSCALER_SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
        "extraArgs": {
            "balance-similar-node-groups": True,
            "expander": "least-waste",
            "skip-nodes-with-system-pods": False,
        },
        "priorityClassName": "system-cluster-critical",
        "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "300Mi"}},
    }


@dataclass(kw_only=True)
class ClusterArgs:
    cluster_name: str
    mode: Literal["create", "existing"]
    kubeconfig: pulumi.Input[str] | None  # existing
    version: str
    node_mode: Literal["managed", "fargate"]
    architecture: Literal["arm64", "x86_64"]
    instance_types: Sequence[str]
    node_min: int
    node_desired: int
    node_max: int
    network: NetworkArgs
    fargate_namespaces: Sequence[str]  # besides kube-system
    pod_identity_agent: bool
    deletion_protection: bool
    node_disk_gib: int = 20
    public_access_cidrs: Sequence[str] = field(default_factory=lambda: ["0.0.0.0/0"])
    node_autoscaler: bool = (
        True  # created managed clusters: the Cluster Autoscaler resizes the node group within min..max
    )
    metrics_server: bool = True  # created clusters: the metrics-server add-on (the HPA needs the metrics API)


def node_trust() -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


class Cluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]  # without https://
    provider: k8s.Provider
    workers: list[pulumi.Resource]  # what must exist before pods can be scheduled

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:eks:Cluster", name, None, renamed(opts, "csm:eks_cluster:EksCluster"))
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self.workers = []
        if args.mode == "existing":
            if args.kubeconfig is None:
                raise ValueError(f"{name}: an existing cluster needs its kubeconfig")
            found = aws.eks.get_cluster_output(name=args.cluster_name, opts=invoke)
            self.cluster_name = found.name
            self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
            self.oidc_issuer = found.identities.apply(lambda ids: ids[0].oidcs[0].issuer.removeprefix("https://"))
            account = aws.get_caller_identity_output(opts=invoke).account_id
            partition = aws.get_partition_output(opts=invoke).partition
            self.oidc_provider_arn = pulumi.Output.all(partition, account, self.oidc_issuer).apply(
                lambda a: f"arn:{a[0]}:iam::{a[1]}:oidc-provider/{a[2]}"
            )
        else:
            network = Network(f"{name}-net", args.network, opts=child)
            fargate = None
            if args.node_mode == "fargate":
                selectors = [
                    aws.eks.FargateProfileSelectorArgs(namespace=ns) for ns in ["kube-system", *args.fargate_namespaces]
                ]
                fargate = eks.FargateProfileArgs(selectors=selectors, subnet_ids=network.private_subnet_ids)
            cluster = eks.Cluster(
                f"{name}-eks",
                name=args.cluster_name,
                version=args.version,
                vpc_id=network.vpc_id,
                public_subnet_ids=network.public_subnet_ids,
                private_subnet_ids=network.private_subnet_ids,
                node_associate_public_ip_address=False,
                skip_default_node_group=True,
                create_oidc_provider=True,
                authentication_mode=eks.AuthenticationMode.API,
                endpoint_private_access=True,
                endpoint_public_access=True,  # `pulumi up` reaches the API from outside the VPC; limited by publicAccessCidrs
                public_access_cidrs=list(args.public_access_cidrs),
                enabled_cluster_log_types=CONTROL_PLANE_LOGS,
                vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
                fargate=fargate,
                deletion_protection=args.deletion_protection,
                opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
            )
            self.cluster_name = pulumi.Output.from_input(args.cluster_name)
            self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
            self.oidc_provider_arn = cluster.oidc_provider_arn
            self.oidc_issuer = cluster.oidc_issuer.apply(lambda i: i.removeprefix("https://"))
            self.workers.append(cluster)
            if args.node_mode == "managed":
                self.workers.append(self._node_group(name, args, network, cluster))
            if args.pod_identity_agent:
                self.workers.append(
                    aws.eks.Addon(
                        f"{name}-pod-identity-agent",
                        cluster_name=args.cluster_name,
                        addon_name="eks-pod-identity-agent",
                        resolve_conflicts_on_create="OVERWRITE",
                        resolve_conflicts_on_update="OVERWRITE",
                        opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.workers)),
                    )
                )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.workers)),
        )
        if args.mode == "create":
            self._scaling(name, args)
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
            }
        )

    def _scaling(self, name: str, args: ClusterArgs) -> None:
        """What makes the HPA and the node group act: metrics-server, and the Cluster Autoscaler for managed nodes."""
        if args.metrics_server:
            aws.eks.Addon(
                f"{name}-metrics-server",
                cluster_name=args.cluster_name,
                addon_name=METRICS_SERVER_ADDON,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.workers)),
            )
        if not (args.node_autoscaler and args.node_mode == "managed"):
            return
        from components.eks.workload_role import WorkloadRole, WorkloadRoleArgs

        role = WorkloadRole(
            f"{name}-autoscaler",
            WorkloadRoleArgs(
                mode="irsa",
                cluster_name=args.cluster_name,
                namespace=AUTOSCALER_NAMESPACE,
                service_account=AUTOSCALER_SERVICE_ACCOUNT,
                oidc_provider_arn=self.oidc_provider_arn,
                oidc_issuer=self.oidc_issuer,
                statements=cluster_autoscaler_policy(args.cluster_name),
                description="Cluster Autoscaler: resize this cluster's node groups",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        k8s.helm.v3.Release(
            f"{name}-autoscaler",
            name=AUTOSCALER_CHART,
            chart=AUTOSCALER_CHART,
            version=AUTOSCALER_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=AUTOSCALER_REPO),
            namespace=AUTOSCALER_NAMESPACE,
            atomic=True,
            cleanup_on_fail=True,
            values=pulumi.Output.all(region, role.role_arn).apply(
                lambda a: cluster_autoscaler_values(args.cluster_name, a[0], args.version, a[1])
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=list(self.workers)),
        )

    def _node_group(self, name: str, args: ClusterArgs, network: Network, cluster: eks.Cluster) -> aws.eks.NodeGroup:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=json.dumps(node_trust()),
            description="EKS managed nodes: join the cluster, run the VPC CNI, pull images",
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{i}", role=role.name, policy_arn=arn, opts=child)
            for i, arn in enumerate(NODE_POLICIES)
        ]
        template = aws.ec2.LaunchTemplate(
            f"{name}-node",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=args.node_disk_gib, volume_type="gp3", encrypted="true"
                    ),
                )
            ],
            update_default_version=True,
            opts=child,
        )
        return aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=args.cluster_name,
            node_role_arn=role.arn,
            subnet_ids=network.private_subnet_ids,
            instance_types=list(args.instance_types),
            ami_type=AMI_TYPES[args.architecture],
            capacity_type="ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.node_min, desired_size=args.node_desired, max_size=args.node_max
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            labels={"csm.io/node-group": "csm"},
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[cluster, *attachments], ignore_changes=["scalingConfig.desiredSize"]
            ),
        )
