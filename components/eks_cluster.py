"""The EKS cluster CSM runs on, and the Kubernetes provider for it.

``existing``: the cluster named in config; its kubeconfig comes from config (a secret) and its
OIDC issuer from the EKS API (IRSA roles trust the IAM OIDC provider of that issuer, which the
cluster's owners have created). ``create``: a VPC (components/network.py), a pulumi-eks cluster
(API authentication, OIDC provider, VPC CNI with NetworkPolicy enforcement, control-plane logs)
and either a managed node group (Graviton or x86, IMDSv2 with hop limit 1 so pods cannot borrow
the node role, encrypted gp3 root volumes) or a Fargate profile.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components.network import Network, NetworkArgs

AMI_TYPES = {"arm64": "AL2023_ARM_64_STANDARD", "x86_64": "AL2023_x86_64_STANDARD"}
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
CONTROL_PLANE_LOGS = ["api", "audit", "authenticator"]


@dataclass
class EksClusterArgs:
    cluster_name: str
    mode: Literal["create", "existing"]
    kubeconfig: Optional[pulumi.Input[str]] = None  # existing
    version: str = "1.33"
    node_mode: Literal["managed", "fargate"] = "managed"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    instance_types: Sequence[str] = field(default_factory=lambda: ["m7g.large"])
    node_min: int = 2
    node_desired: int = 2
    node_max: int = 4
    node_disk_gib: int = 20
    network: NetworkArgs = field(default_factory=NetworkArgs)
    fargate_namespaces: Sequence[str] = field(default_factory=list)  # besides kube-system
    pod_identity_agent: bool = False
    public_access_cidrs: Sequence[str] = field(default_factory=lambda: ["0.0.0.0/0"])
    deletion_protection: bool = False


def node_trust() -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole",
    }]}


class EksCluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]  # without https://
    provider: k8s.Provider
    workers: list[pulumi.Resource]  # what must exist before pods can be scheduled

    def __init__(self, name: str, args: EksClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("csm:eks_cluster:EksCluster", name, None, opts)
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
                lambda a: f"arn:{a[0]}:iam::{a[1]}:oidc-provider/{a[2]}")
        else:
            network = Network(f"{name}-net", args.network, opts=child)
            fargate = None
            if args.node_mode == "fargate":
                selectors = [{"namespace": ns} for ns in ["kube-system", *args.fargate_namespaces]]
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
                self.workers.append(aws.eks.Addon(
                    f"{name}-pod-identity-agent", cluster_name=args.cluster_name, addon_name="eks-pod-identity-agent",
                    resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.workers)),
                ))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                                     opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.workers)))
        self.register_outputs({
            "cluster_name": self.cluster_name, "oidc_provider_arn": self.oidc_provider_arn, "oidc_issuer": self.oidc_issuer,
        })

    def _node_group(self, name: str, args: EksClusterArgs, network: Network, cluster: eks.Cluster) -> aws.eks.NodeGroup:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(f"{name}-node", assume_role_policy=json.dumps(node_trust()),
                            description="EKS managed nodes: join the cluster, run the VPC CNI, pull images", opts=child)
        attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{i}", role=role.name, policy_arn=arn, opts=child)
            for i, arn in enumerate(NODE_POLICIES)
        ]
        template = aws.ec2.LaunchTemplate(
            f"{name}-node",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1,
            ),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(volume_size=args.node_disk_gib, volume_type="gp3", encrypted="true"),
            )],
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
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=args.node_min, desired_size=args.node_desired, max_size=args.node_max),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=template.id, version=template.latest_version.apply(str)),
            labels={"csm.io/node-group": "csm"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, *attachments], ignore_changes=["scalingConfig.desiredSize"]),
        )
