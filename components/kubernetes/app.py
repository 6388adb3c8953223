"""CSM's Kubernetes objects, each applied as its own typed pulumi-kubernetes resource with the
metadata and spec components/kubernetes/render.py renders (never a YAML ConfigGroup), so what is
deployed is exactly what ``make render`` shows and what the tests validate.

Values known only at deploy time (the IAM role ARN, Pulumi secret values) are put into the
rendered structure as Outputs at the leaves where they belong; everything else stays plain, so a
preview shows real diffs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import renamed
from components.kubernetes import render
from components.spec import ServiceSpec

ROLE_SENTINEL = "__CSM_ROLE_ARN__"
IMAGE_SENTINEL = "csm.invalid/image-placeholder@sha256:" + "f" * 64


def substitute(value: Any, sentinel: str, replacement: Any) -> Any:
    """``value`` with every string equal to ``sentinel`` replaced (nested dicts and lists)."""
    if isinstance(value, dict):
        return {k: substitute(v, sentinel, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, sentinel, replacement) for v in value]
    return replacement if value == sentinel else value


@dataclass(kw_only=True)
class AppArgs:
    spec: ServiceSpec
    options: render.KubernetesOptions
    image_ref: pulumi.Input[str] | None = None  # the deployed image (by digest); None = spec.image
    role_arn: pulumi.Input[str] | None = None
    secret_values: Mapping[str, pulumi.Input[str]] = field(
        default_factory=dict
    )  # kubernetes-secret mode: SecretRef.name -> value
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)  # workers, the ESO release


Factory = Callable[[str, dict, pulumi.ResourceOptions], pulumi.CustomResource]

FACTORIES: dict[str, Factory] = {
    "Namespace": lambda n, o, opts: k8s.core.v1.Namespace(n, metadata=o["metadata"], opts=opts),
    "ServiceAccount": lambda n, o, opts: k8s.core.v1.ServiceAccount(
        n, metadata=o["metadata"], automount_service_account_token=o["automountServiceAccountToken"], opts=opts
    ),
    "ConfigMap": lambda n, o, opts: k8s.core.v1.ConfigMap(n, metadata=o["metadata"], data=o["data"], opts=opts),
    "Secret": lambda n, o, opts: k8s.core.v1.Secret(
        n, metadata=o["metadata"], type=o["type"], string_data=o["stringData"], opts=opts
    ),
    "Deployment": lambda n, o, opts: k8s.apps.v1.Deployment(n, metadata=o["metadata"], spec=o["spec"], opts=opts),
    "Service": lambda n, o, opts: k8s.core.v1.Service(n, metadata=o["metadata"], spec=o["spec"], opts=opts),
    "Ingress": lambda n, o, opts: k8s.networking.v1.Ingress(n, metadata=o["metadata"], spec=o["spec"], opts=opts),
    "HorizontalPodAutoscaler": lambda n, o, opts: k8s.autoscaling.v2.HorizontalPodAutoscaler(
        n, metadata=o["metadata"], spec=o["spec"], opts=opts
    ),
    "PodDisruptionBudget": lambda n, o, opts: k8s.policy.v1.PodDisruptionBudget(
        n, metadata=o["metadata"], spec=o["spec"], opts=opts
    ),
    "NetworkPolicy": lambda n, o, opts: k8s.networking.v1.NetworkPolicy(
        n, metadata=o["metadata"], spec=o["spec"], opts=opts
    ),
}


def _custom(n: str, o: dict, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    return k8s.apiextensions.CustomResource(
        n, api_version=o["apiVersion"], kind=o["kind"], metadata=o["metadata"], spec=o["spec"], opts=opts
    )


class App(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    ingress_hostname: pulumi.Output[str | None] | None
    resources: dict[str, pulumi.CustomResource]  # "Kind/name" -> resource

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:kubernetes:App", name, None, renamed(opts, "csm:k8s_app:KubernetesApp"))
        spec = args.spec.with_image(IMAGE_SENTINEL) if args.image_ref is not None else args.spec
        options = (
            dataclasses.replace(args.options, role_arn=ROLE_SENTINEL) if args.role_arn is not None else args.options
        )
        objects = render.render_objects(spec, options)
        secrets_by_object = {render.secret_object_name(spec, s.name): s for s in spec.secrets}

        self.resources = {}
        namespace_res: pulumi.Resource | None = None
        inputs_ready: list[pulumi.Resource] = []  # what the Deployment reads: ServiceAccount, ConfigMap, secrets
        for obj in objects:
            key = render.object_key(obj)
            if args.role_arn is not None:
                obj = substitute(obj, ROLE_SENTINEL, args.role_arn)
            if args.image_ref is not None:
                obj = substitute(obj, IMAGE_SENTINEL, args.image_ref)
            kind = obj["kind"]
            if kind == "Secret":
                ref = secrets_by_object[obj["metadata"]["name"]]
                if ref.name not in args.secret_values:
                    raise ValueError(f"{name}: no value for secret {ref.name} (Pulumi config key {ref.ref})")
                obj = {**obj, "stringData": {render.SECRET_KEY: pulumi.Output.secret(args.secret_values[ref.name])}}
            depends: list[pulumi.Resource] = list(args.depends_on)
            if namespace_res is not None:
                depends.append(namespace_res)
            if kind == "Deployment":
                depends += inputs_ready
            opts_ = pulumi.ResourceOptions(parent=self, depends_on=depends)
            if kind == "Secret":
                opts_ = pulumi.ResourceOptions.merge(
                    opts_, pulumi.ResourceOptions(additional_secret_outputs=["stringData", "data"])
                )
            if kind == "Deployment":
                # `pulumi up` fails soon after the rollout stalls (the old pods keep serving), not after the provider's 10 min.
                wait = f"{options.progress_deadline + 60}s"
                opts_ = pulumi.ResourceOptions.merge(
                    opts_, pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=wait, update=wait))
                )
            factory = FACTORIES.get(kind, _custom)
            res = factory(f"{name}-{kind.lower()}-{obj['metadata']['name']}", obj, opts_)
            self.resources[key] = res
            if kind == "Namespace":
                namespace_res = res
            elif kind in ("ServiceAccount", "ConfigMap", "Secret", "ExternalSecret", "SecretStore"):
                inputs_ready.append(res)

        self.namespace = pulumi.Output.from_input(options.namespace)
        self.service_name = pulumi.Output.from_input(spec.name)
        ingress = self.resources.get(f"Ingress/{spec.name}")
        self.ingress_hostname = None
        if isinstance(ingress, k8s.networking.v1.Ingress):
            self.ingress_hostname = ingress.status.apply(
                lambda s: (
                    s.load_balancer.ingress[0].hostname if s and s.load_balancer and s.load_balancer.ingress else None
                )
            )
        self.register_outputs({"namespace": self.namespace, "service_name": self.service_name})
