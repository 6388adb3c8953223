"""The Kubernetes target: CSM on any cluster named by a kubeconfig and context; no AWS at all.

``Target`` is a provider for that cluster plus ``App``, the same component
(and the same renderer, components/kubernetes/render.py) the EKS target applies; EKS adds its AWS
extras around it. What a cluster may lack (metrics-server for the HPA, a CNI that enforces
NetworkPolicies, an Ingress controller, the External Secrets Operator) is a documented
prerequisite (docs/kubernetes.md), not installed here.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.config import NAMESPACE, StackConfig
from components.kubernetes import render
from components.kubernetes.app import App, AppArgs
from components.spec import ServiceSpec
from components.targets import DeployedImage


@dataclass(kw_only=True)
class TargetArgs:
    spec: ServiceSpec
    options: render.KubernetesOptions
    image_ref: pulumi.Input[str]
    kubeconfig: pulumi.Input[str]
    context: str | None
    node_address: str | None
    secret_values: Mapping[str, pulumi.Input[str]]  # kubernetes-secret mode


def service_url(
    options: render.KubernetesOptions, spec: ServiceSpec, node_address: str | None, service: k8s.core.v1.Service
) -> pulumi.Output[str]:
    """Where users reach the service: the Ingress host, a node port, a load balancer, or (with
    none of them) its in-cluster name."""
    if options.ingress and options.domain_name:
        scheme = "https" if options.ingress_tls_secret else "http"
        return pulumi.Output.from_input(f"{scheme}://{options.domain_name}")
    if options.service_type == "NodePort" and node_address:
        return service.spec.apply(lambda s: f"http://{node_address}:{s.ports[0].node_port}" if s.ports else "")
    if options.service_type == "LoadBalancer":

        def address(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
            ingress = (
                status.load_balancer.ingress if status and status.load_balancer and status.load_balancer.ingress else []
            )
            host = (ingress[0].hostname or ingress[0].ip) if ingress else None
            return f"http://{host}" if host else ""

        return service.status.apply(address)
    return pulumi.Output.from_input(f"http://{spec.name}.{options.namespace}.svc.cluster.local")


def cluster_server(kubeconfig: str, context: str | None) -> str:
    """The API server URL the kubeconfig's (or the named) context points at."""
    doc = yaml.safe_load(kubeconfig) or {}
    name = context or doc.get("current-context")
    ctx = next((c["context"] for c in doc.get("contexts") or [] if c.get("name") == name), None)
    if ctx is None:
        raise pulumi.RunError(f"csm:kubernetesKubeconfig has no context {name!r} (csm:kubernetesContext)")
    cluster = next((c["cluster"] for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), None)
    if not cluster or not cluster.get("server"):
        raise pulumi.RunError(f"csm:kubernetesKubeconfig: context {name!r} names no cluster with a server")
    return str(cluster["server"])


def reachable(kubeconfig: str, context: str | None, timeout: float = 10.0) -> str:
    """``kubeconfig`` when its API server accepts a connection; otherwise a RunError naming the
    address. pulumi-kubernetes previews against an unreachable cluster with a warning only, which
    would show a plan that cannot be applied."""
    server = cluster_server(kubeconfig, context)
    parts = urlsplit(server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except OSError as exc:
        raise pulumi.RunError(
            f"the cluster at {server} (csm:kubernetesKubeconfig, context {context or 'current'}) "
            f"cannot be reached: {exc}"
        ) from None
    return kubeconfig


class Target(pulumi.ComponentResource):
    service_url: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:kubernetes:Target", name, None, opts)
        provider = k8s.Provider(
            f"{name}-cluster",
            kubeconfig=pulumi.Output.secret(args.kubeconfig).apply(lambda k: reachable(k, args.context)),
            context=args.context,
            # Never forget a resource just because the cluster cannot be reached: fail instead.
            delete_unreachable=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["kubeconfig"]),
        )
        app = App(
            f"{name}-k8s",
            AppArgs(
                spec=args.spec,
                options=args.options,
                image_ref=args.image_ref,
                secret_values=args.secret_values,
            ),
            opts=pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider}),
        )
        service = app.resources[f"Service/{args.spec.name}"]
        assert isinstance(service, k8s.core.v1.Service)  # nosec B101 # the renderer always emits it
        self.service_url = service_url(args.options, args.spec, args.node_address, service)
        self.namespace = app.namespace
        self.register_outputs({"service_url": self.service_url, "namespace": self.namespace})


def deploy(
    cfg: StackConfig, spec: ServiceSpec, image: DeployedImage, opts: pulumi.ResourceOptions
) -> dict[str, pulumi.Input]:
    config = pulumi.Config(NAMESPACE)
    values = {s.name: config.require_secret(s.ref) for s in spec.secrets} if cfg.secrets.source == "pulumi" else {}
    k = cfg.kubernetes
    target = Target(
        cfg.name,
        TargetArgs(
            spec=spec,
            options=render.kubernetes_options(cfg),
            image_ref=image.ref,
            kubeconfig=config.require_secret("kubernetesKubeconfig"),
            context=k.context,
            node_address=k.node_address,
            secret_values=values,
        ),
        opts=opts,
    )
    return {"serviceUrl": target.service_url, "namespace": target.namespace}
