"""Cross-key rules of the EKS target (cluster, nodes, Fargate profiles, workload identity, capacity)."""

from __future__ import annotations

import typing
from collections.abc import Iterable

from components.config.base import GRAVITON_TYPE, Problem, pods_per_node
from components.config.rules import P, rule

if typing.TYPE_CHECKING:
    from components.config.model import StackConfig


@rule("target", "eksClusterMode", "eksClusterName", "eksKubeconfig")
def _eks_existing(c: StackConfig) -> Iterable[Problem]:
    if c.target != "eks":
        return
    if c.eks.cluster_mode == "existing":
        if c.eks.cluster_name is None:
            yield P("eksClusterName", "is required with eksClusterMode existing")
        if c.eks.kubeconfig is None:
            yield P("eksKubeconfig", "is required with eksClusterMode existing")


@rule("target", "eksClusterMode", "eksNodeMode", "eksInstanceTypes", "serviceArchitecture")
def _eks_arch(c: StackConfig) -> Iterable[Problem]:
    if c.target == "eks" and c.eks.cluster_mode == "create" and c.eks.node_mode == "managed":
        arm = c.service.architecture == "arm64"
        wrong = [t for t in c.eks.instance_types if bool(GRAVITON_TYPE.match(t)) != arm]
        if wrong:
            kind = "Graviton (arm64)" if arm else "x86_64"
            yield P(
                "eksInstanceTypes",
                f"{', '.join(wrong)} do not match serviceArchitecture {c.service.architecture}: use {kind} instance types",
            )


@rule("target", "eksNodeMinSize", "eksNodeDesiredSize", "eksNodeMaxSize", "environment")
def _eks_nodes(c: StackConfig) -> Iterable[Problem]:
    if c.target != "eks":
        return
    e = c.eks
    if not e.node_min <= e.node_desired <= e.node_max:
        yield P(
            "eksNodeDesiredSize",
            f"must lie within eksNodeMinSize..eksNodeMaxSize ({e.node_min}..{e.node_max}, got {e.node_desired})",
        )
    if c.prod and e.cluster_mode == "create" and e.node_mode == "managed" and e.node_min < 2:
        yield P("eksNodeMinSize", "must be >= 2 in prod (pods spread over two nodes in two zones)")


@rule("target", "eksClusterMode", "eksNodeMode", "serviceArchitecture", "eksIdentityMode", "eksContainerInsights")
def _eks_fargate(c: StackConfig) -> Iterable[Problem]:
    # What EKS on Fargate cannot do: arm64 pods, the Pod Identity agent and add-on DaemonSets.
    if c.target != "eks" or c.eks.cluster_mode != "create" or c.eks.node_mode != "fargate":
        return
    if c.service.architecture != "x86_64":
        yield P("serviceArchitecture", "must be x86_64 with eksNodeMode fargate (EKS Fargate runs x86_64 pods only)")
    if c.eks.identity_mode != "irsa":
        yield P(
            "eksIdentityMode", "must be irsa with eksNodeMode fargate (EKS Pod Identity is not available on Fargate)"
        )
    if c.eks.container_insights:
        yield P(
            "eksContainerInsights",
            "must be false with eksNodeMode fargate (the observability add-on runs as DaemonSets, which Fargate does not run)",
        )


@rule("target", "eksClusterMode", "eksNodeMode", "environment")
def _eks_fargate_network_policies(c: StackConfig) -> Iterable[Problem]:
    # "Network policies are not supported for Pods that run on Fargate": the default-deny policies would be
    # accepted and never enforced. https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html
    if c.prod and c.target == "eks" and c.eks.cluster_mode == "create" and c.eks.node_mode == "fargate":
        yield P(
            "eksNodeMode",
            "must be managed in prod: EKS does not enforce NetworkPolicies for Pods on Fargate, so the service's "
            "default-deny policies would silently not apply",
        )


@rule("target", "eksIdentityMode", "eksInstallExternalSecrets", "secretSource", "secrets")
def _eks_pod_identity_eso(c: StackConfig) -> Iterable[Problem]:
    e = c.eks
    if (
        c.target == "eks"
        and e.identity_mode == "pod-identity"
        and c.secrets.source == "aws"
        and c.secrets.items
        and not e.install_external_secrets
    ):
        yield P(
            "eksInstallExternalSecrets",
            "must be true with eksIdentityMode pod-identity and secretSource aws: the service's role trusts "
            "the External Secrets controller this stack installs; with a pre-installed operator use eksIdentityMode irsa",
        )


@rule(
    "target",
    "eksClusterMode",
    "eksNodeMode",
    "eksInstanceTypes",
    "eksNodeMaxSize",
    "serviceCpu",
    "serviceMemory",
    "scalingMaxCount",
    "eksContainerInsights",
)
def _eks_capacity(c: StackConfig) -> Iterable[Problem]:
    # Pods per node from the node's allocatable resources (EKS AMI kube-reserved and eviction threshold) less the DaemonSets,
    # and the pod's requests (= serviceCpu in millicores, serviceMemory): https://docs.aws.amazon.com/eks/latest/best-practices/node_and_pod_capacity.html
    # A rollout surges one pod (maxSurge 1) above scalingMaxCount; the cluster autoscaler adds nodes up to eksNodeMaxSize.
    if c.target != "eks" or c.eks.cluster_mode != "create" or c.eks.node_mode != "managed":
        return
    cpu_m = c.service.cpu * 1000 // 1024
    mem = c.service.memory
    fits = {t: pods_per_node(t, cpu_m, mem, c.eks.container_insights) for t in c.eks.instance_types}
    known = {t: n for t, n in fits.items() if n is not None}
    if not known:
        return
    smallest, per_node = min(known.items(), key=lambda kv: kv[1])
    if per_node < 1:
        yield P(
            "eksInstanceTypes",
            f"a pod (requests {cpu_m}m CPU, {mem}Mi) does not fit on {smallest} once the node's reserved resources "
            "and the DaemonSets are taken: use a larger instance type or lower serviceCpu/serviceMemory",
        )
        return
    pods = c.scaling.max_count + 1
    nodes = -(-pods // per_node)
    if nodes > c.eks.node_max:
        yield P(
            "eksNodeMaxSize",
            f"must be >= {nodes}: {smallest} fits {per_node} pod(s) of {cpu_m}m CPU/{mem}Mi, and scalingMaxCount "
            f"{c.scaling.max_count} plus one surge pod need {pods} (got {c.eks.node_max})",
        )
