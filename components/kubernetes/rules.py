"""Cross-key rules of the Kubernetes target (cluster access, Service exposure, Ingress, secrets)."""

from __future__ import annotations

import typing
from collections.abc import Iterable

from components.config.base import Problem
from components.config.rules import P, rule

if typing.TYPE_CHECKING:
    from components.config.model import StackConfig


@rule("target", "kubernetesKubeconfig")
def _kubernetes_cluster(c: StackConfig) -> Iterable[Problem]:
    if c.target == "kubernetes" and c.kubernetes.kubeconfig is None:
        yield P(
            "kubernetesKubeconfig",
            'is required with target kubernetes (pulumi config set --secret kubernetesKubeconfig "$(cat kubeconfig)")',
        )


@rule("target", "kubernetesServiceType", "kubernetesNodePort", "kubernetesNodeAddress")
def _kubernetes_node_port(c: StackConfig) -> Iterable[Problem]:
    k = c.kubernetes
    if c.target != "kubernetes":
        return
    if k.service_type != "NodePort":
        for key, value in (("kubernetesNodePort", k.node_port), ("kubernetesNodeAddress", k.node_address)):
            if value:
                yield P(key, f"only applies with kubernetesServiceType NodePort (it is {k.service_type})")
    elif k.node_port and not 30000 <= k.node_port <= 32767:
        # https://kubernetes.io/docs/concepts/services-networking/service/#type-nodeport (default --service-node-port-range)
        yield P(
            "kubernetesNodePort", f"must lie in the default node port range 30000-32767, or be 0 (got {k.node_port})"
        )


@rule(
    "target",
    "kubernetesIngress",
    "kubernetesIngressTlsSecret",
    "kubernetesIngressClass",
    "domainName",
    "environment",
    "kubernetesServiceType",
)
def _kubernetes_ingress(c: StackConfig) -> Iterable[Problem]:
    k = c.kubernetes
    if c.target != "kubernetes":
        return
    if not k.ingress:
        for key, value in (
            ("kubernetesIngressClass", k.ingress_class),
            ("kubernetesIngressTlsSecret", k.ingress_tls_secret),
        ):
            if value:
                yield P(key, "only applies with kubernetesIngress true")
    elif k.ingress_tls_secret and c.ingress.domain_name is None:
        yield P("domainName", "is required with kubernetesIngressTlsSecret (the Ingress serves that host over TLS)")
    if c.prod:
        if not k.ingress or k.ingress_tls_secret is None:
            yield P(
                "kubernetesIngressTlsSecret",
                "is required in prod, with kubernetesIngress true: the service is served over HTTPS only",
            )
        if k.service_type != "ClusterIP":
            yield P(
                "kubernetesServiceType",
                f"must be ClusterIP in prod (got {k.service_type}): {k.service_type} publishes plain HTTP beside the TLS Ingress",
            )


@rule("target", "secretSource", "secrets", "kubernetesSecretStore")
def _kubernetes_secrets(c: StackConfig) -> Iterable[Problem]:
    if c.target != "kubernetes":
        return
    uses_store = c.secrets.source == "aws" and bool(c.secrets.items)
    if uses_store and c.kubernetes.secret_store is None:
        yield P(
            "kubernetesSecretStore",
            "is required with target kubernetes and secretSource aws: the ExternalSecrets read from a store you run",
        )
    if not uses_store and c.kubernetes.secret_store is not None:
        yield P("kubernetesSecretStore", "only applies with secretSource aws and csm:secrets set")
