"""Kubernetes renderer: ServiceSpec + options -> the Kubernetes objects CSM runs as (plain dicts).

``render_objects`` returns exactly what the EKS component applies (each object as its own typed
pulumi-kubernetes resource with this metadata and spec) and what ``make render`` writes to
build/rendered/<stack>/eks/manifests.yaml. The unit tests validate every object strictly
(unknown fields rejected) against the Kubernetes OpenAPI schema of ``options.kubernetes_version``
and run checkov's Kubernetes checks on the file.

Objects, in apply order: Namespace (Pod Security Admission ``restricted``), ServiceAccount,
ConfigMap (non-secret settings), the secrets (``external-secrets``: a SecretStore on AWS Secrets
Manager plus one ExternalSecret per secret; ``kubernetes-secret``: one Secret per secret, its value
supplied by the component from a Pulumi secret, never rendered), Deployment, Service, Ingress
(AWS Load Balancer Controller), HorizontalPodAutoscaler, PodDisruptionBudget, NetworkPolicies.
Every secret lands in a Kubernetes Secret named ``<service>-<secret name>`` under the key ``value``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import yaml

from components import per_stack
from components.spec import ServiceSpec

if TYPE_CHECKING:
    from components.config import StackConfig

ACCOUNT_PLACEHOLDER = "000000000000"
SECRET_KEY = "value"  # nosec B105 # the data key inside each Secret, not a secret value
ESO_API = "external-secrets.io/v1"
ESO_NAMESPACE = "external-secrets"
ESO_SERVICE_ACCOUNT = "external-secrets"
ARCH_LABEL = {"arm64": "arm64", "x86_64": "amd64"}
PRESTOP_SECONDS = 10  # time for the endpoint removal to reach the ALB before SIGTERM
POD_IDENTITY_AGENT = ("169.254.170.23/32", 80)
SecretMode = Literal["external-secrets", "kubernetes-secret"]


@dataclass(frozen=True)
class KubernetesOptions:
    namespace: str = "csm"
    kubernetes_version: str = "1.33"
    secret_mode: SecretMode = "external-secrets"
    identity_mode: Literal["irsa", "pod-identity"] = "irsa"
    role_arn: str | None = None  # the ServiceAccount's IAM role (IRSA annotation; ESO role in pod-identity mode)
    region: str = "us-east-1"
    ingress: bool = True
    certificate_arn: str | None = None
    domain_name: str | None = None
    internal: bool = False
    ingress_cidrs: Sequence[str] = field(default_factory=lambda: ["0.0.0.0/0"])
    ssl_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    idle_timeout: int = 60
    deletion_protection: bool = False
    zone_spread_required: bool = False  # prod: DoNotSchedule across zones
    eso_refresh: str = "1h"
    # What differs between EKS and any other cluster. EKS: the AWS Load Balancer Controller's
    # Ingress and readiness gates, a SecretStore on Secrets Manager. Elsewhere: the cluster's own
    # Ingress class with a TLS Secret, and an External Secrets store the user runs.
    ingress_controller: Literal["alb", "generic"] = "alb"
    ingress_class: str | None = None
    ingress_tls_secret: str | None = None
    secret_store_ref: str | None = None  # "SecretStore/<name>" or "ClusterSecretStore/<name>": use it, render none
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    node_port: int = 0
    progress_deadline: int = 600

    @property
    def external_secrets(self) -> bool:
        return self.secret_mode == "external-secrets"  # nosec B105 # compares a mode name, holds no secret


def kubernetes_options(cfg: StackConfig) -> KubernetesOptions:
    """The options of ``csm:target kubernetes``: any cluster, no AWS."""
    k = cfg.kubernetes
    return KubernetesOptions(
        namespace=k.namespace,
        kubernetes_version=k.version,
        secret_mode="external-secrets" if cfg.secrets.source == "aws" else "kubernetes-secret",
        role_arn=None,
        ingress=k.ingress,
        domain_name=cfg.ingress.domain_name,
        deletion_protection=cfg.general.deletion_protection,
        zone_spread_required=cfg.prod,
        ingress_controller="generic",
        ingress_class=k.ingress_class,
        ingress_tls_secret=k.ingress_tls_secret,
        secret_store_ref=k.secret_store,
        service_type=k.service_type,
        node_port=k.node_port,
        progress_deadline=k.progress_deadline,
    )


def options_from_config(cfg: StackConfig, role_arn: str | None = None) -> KubernetesOptions:
    name = per_stack(cfg.name, cfg.stack)
    i = cfg.ingress
    return KubernetesOptions(
        namespace=cfg.eks.namespace,
        kubernetes_version=cfg.eks.kubernetes_version,
        secret_mode="external-secrets" if cfg.secrets.source == "aws" else "kubernetes-secret",
        identity_mode=cfg.eks.identity_mode,
        role_arn=role_arn or f"arn:aws:iam::{ACCOUNT_PLACEHOLDER}:role/{name}-app",
        region=cfg.aws_region or "us-east-1",
        ingress=cfg.eks.ingress,
        certificate_arn=i.certificate_arn,
        domain_name=i.domain_name,
        internal=i.internal,
        ingress_cidrs=tuple(cfg.network.ingress_cidrs),
        ssl_policy=i.ssl_policy,
        idle_timeout=i.idle_timeout,
        deletion_protection=cfg.general.deletion_protection,
        zone_spread_required=cfg.prod,
    )


# --------------------------------------------------------------------------- names


def secret_object_name(spec: ServiceSpec, secret_name: str) -> str:
    return f"{spec.name}-{secret_name}"


def load_balancer_name(spec: ServiceSpec) -> str:
    """The ALB's name (the controller's load-balancer-name annotation; at most 32 characters)."""
    base = f"{per_stack(spec.name, spec.stack)}-eks"
    return base[:32].rstrip("-")


def _version_at_least(version: str, minor: int) -> bool:
    major, _, rest = version.partition(".")
    return int(major) > 1 or int(rest or 0) >= minor


def _meta(spec: ServiceSpec, opts: KubernetesOptions, name: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": opts.namespace, "labels": dict(spec.labels)}
    meta.update(extra)
    return meta


def _selector(spec: ServiceSpec) -> dict[str, str]:
    return dict(spec.labels)


# --------------------------------------------------------------------------- objects


def namespace(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    version = f"v{opts.kubernetes_version}"
    labels = {"kubernetes.io/metadata.name": opts.namespace, **spec.labels}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = version
    if opts.ingress and opts.ingress_controller == "alb":
        # The Load Balancer Controller's pod readiness gate: a rollout waits until the new pods are
        # healthy in the target group, so it never leaves only draining targets.
        # https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/pod_readiness_gate/
        labels["elbv2.k8s.aws/pod-readiness-gate-inject"] = "enabled"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": opts.namespace, "labels": labels}}


def service_account(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    meta = _meta(spec, opts, spec.name)
    if opts.identity_mode == "irsa" and opts.role_arn:
        meta["annotations"] = {
            "eks.amazonaws.com/role-arn": opts.role_arn,
            "eks.amazonaws.com/sts-regional-endpoints": "true",
        }
    # The service never calls the Kubernetes API; IRSA / Pod Identity inject their own projected token.
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False}


def config_map(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(spec, opts, f"{spec.name}-env"),
        "data": dict(spec.env),
    }


def secret_store_name(spec: ServiceSpec) -> str:
    return f"{spec.name}-aws-secrets-manager"


def secret_store(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    aws: dict[str, Any] = {"service": "SecretsManager", "region": opts.region}
    if opts.identity_mode == "irsa":
        # ESO requests a token for the service's own ServiceAccount and assumes its role (IRSA).
        aws["auth"] = {"jwt": {"serviceAccountRef": {"name": spec.name}}}
    else:
        # Pod Identity: the ESO controller's identity assumes the service's role (which trusts only it).
        aws["role"] = opts.role_arn
    return {
        "apiVersion": ESO_API,
        "kind": "SecretStore",
        "metadata": _meta(spec, opts, secret_store_name(spec)),
        "spec": {"provider": {"aws": aws}},
    }


def external_secret(spec: ServiceSpec, opts: KubernetesOptions, secret: Any) -> dict[str, Any]:
    target = secret_object_name(spec, secret.name)
    kind, _, store = (opts.secret_store_ref or f"SecretStore/{secret_store_name(spec)}").partition("/")
    return {
        "apiVersion": ESO_API,
        "kind": "ExternalSecret",
        "metadata": _meta(spec, opts, target),
        "spec": {
            "refreshInterval": opts.eso_refresh,
            "secretStoreRef": {"kind": kind, "name": store},
            "target": {"name": target, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
            "data": [{"secretKey": SECRET_KEY, "remoteRef": {"key": secret.ref}}],
        },
    }


def kubernetes_secret(spec: ServiceSpec, opts: KubernetesOptions, secret: Any) -> dict[str, Any]:
    """The value is never rendered: the component sets stringData from the Pulumi secret."""
    meta = _meta(spec, opts, secret_object_name(spec, secret.name))
    meta["annotations"] = {"csm.io/value-from": f"pulumi config secret {secret.ref}"}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}


def config_checksum(spec: ServiceSpec) -> str:
    return hashlib.sha256(json.dumps(dict(spec.env), sort_keys=True).encode()).hexdigest()


def termination_grace_seconds(spec: ServiceSpec) -> int:
    """preStop sleep + the service's own drain + a margin: longer than the drain time."""
    return PRESTOP_SECONDS + spec.drain_seconds + 5


def _probe(path: str, *, period: int, timeout: int, failures: int, initial: int = 0) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
        "successThreshold": 1,
    }
    if initial:
        probe["initialDelaySeconds"] = initial
    return probe


def deployment(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    h, sec, res = spec.health, spec.security, spec.resources
    cpu, memory = f"{res.cpu_millicores}m", f"{res.memory_mib}Mi"
    env: list[dict[str, Any]] = [
        {"name": s.env, "valueFrom": {"secretKeyRef": {"name": secret_object_name(spec, s.name), "key": SECRET_KEY}}}
        for s in spec.secrets
        if s.env
    ]
    volumes: list[dict[str, Any]] = [
        {
            "name": "tmp" if p == "/tmp" else "tmp" + p.replace("/", "-"),  # nosec B108 # the pod's own emptyDir at /tmp, not a host temp file
            "emptyDir": {"sizeLimit": f"{sec.tmpfs_size_mib}Mi"},
        }
        for p in sec.tmpfs_paths
    ]
    mounts: list[dict[str, Any]] = [
        {"name": v["name"], "mountPath": p} for v, p in zip(volumes, sec.tmpfs_paths, strict=False)
    ]
    for s in spec.secrets:
        if s.path:
            base = posixpath.basename(s.path)
            volumes.append(
                {
                    "name": f"secret-{s.name}",
                    "secret": {
                        "secretName": secret_object_name(spec, s.name),
                        "defaultMode": 0o440,
                        "items": [{"key": SECRET_KEY, "path": base}],
                    },
                }
            )
            mounts.append({"name": f"secret-{s.name}", "mountPath": s.path, "subPath": base, "readOnly": True})
    start_failures = max(1, -(-h.start_period // 5)) + h.retries
    seccomp = {"type": "RuntimeDefault"}
    container: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        # By digest, the bytes never change: a node that has them starts the pod without the registry.
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": f"{spec.name}-env"}}],
        "env": env,
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}},
        "startupProbe": _probe(h.live_path, period=5, timeout=h.timeout, failures=start_failures),
        "livenessProbe": _probe(h.live_path, period=h.interval, timeout=h.timeout, failures=h.retries),
        "readinessProbe": _probe(h.ready_path, period=max(5, h.interval // 3), timeout=h.timeout, failures=h.retries),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": sec.uid,
            "runAsGroup": sec.gid,
            "readOnlyRootFilesystem": sec.read_only_root_fs,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": list(sec.drop_capabilities)},
            "seccompProfile": dict(seccomp),
        },
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if _version_at_least(opts.kubernetes_version, 30):  # lifecycle sleep action: no shell in the image
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}}
    selector = _selector(spec)
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule" if opts.zone_spread_required else "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
            "matchLabelKeys": ["pod-template-hash"],
        },
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
            "matchLabelKeys": ["pod-template-hash"],
        },
    ]
    pod_spec: dict[str, Any] = {
        "serviceAccountName": spec.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": sec.uid,
            "runAsGroup": sec.gid,
            "fsGroup": sec.gid,
            "seccompProfile": dict(seccomp),
        },
        "nodeSelector": {"kubernetes.io/os": "linux", "kubernetes.io/arch": ARCH_LABEL[spec.architecture]},
        "topologySpreadConstraints": spread,
        "terminationGracePeriodSeconds": termination_grace_seconds(spec),
        "containers": [container],
        "volumes": volumes,
    }
    # No spec.replicas: the HorizontalPodAutoscaler owns the replica count (min scalingMinCount), so
    # neither `pulumi up` nor a GitOps sync resets a scaled-out Deployment.
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec, opts, spec.name, annotations=_skips(DEPLOYMENT_SKIPS, spec)),
        "spec": {
            "selector": {"matchLabels": selector},
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": opts.progress_deadline,
            "minReadySeconds": 5,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": dict(spec.labels),
                    "annotations": {"csm.io/config-checksum": config_checksum(spec)},
                },
                "spec": pod_spec,
            },
        },
    }


# checkov checks that do not apply, each with its reason (checkov reads checkov.io/skipN annotations).
DEPLOYMENT_SKIPS: dict[str, str] = {
    "CKV_K8S_35": "the service reads CSM_* settings from its environment; values come from Secrets (ESO or Pulumi secrets), never from the manifest, and csm:secrets can feed files instead",
}


def _skips(skips: dict[str, str], spec: ServiceSpec) -> dict[str, str]:
    needed = {k: v for k, v in skips.items() if k != "CKV_K8S_35" or any(s.env for s in spec.secrets)}
    return {
        f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(sorted(needed.items()), start=1)
    }


def service(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    if opts.service_type == "NodePort" and opts.node_port:
        port["nodePort"] = opts.node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec, opts, spec.name),
        "spec": {"type": opts.service_type, "selector": _selector(spec), "ports": [port]},
    }


# What the Ingress (ALB or any controller) publishes: the API only. The operational endpoints
# (/metrics, /info, /health*) stay inside the cluster, where probes and scrapers reach the pods.
PUBLIC_PATHS = ("/v1",)


def _backend_rule(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": spec.name, "port": {"name": "http"}}},
                }
                for path in PUBLIC_PATHS
            ]
        }
    }
    if opts.domain_name:
        rule["host"] = opts.domain_name
    return rule


def generic_ingress(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    """An Ingress for the cluster's own controller: its class, TLS from a Secret in the namespace."""
    body: dict[str, Any] = {"rules": [_backend_rule(spec, opts)]}
    if opts.ingress_class:
        body["ingressClassName"] = opts.ingress_class
    if opts.ingress_tls_secret:
        body["tls"] = [{"hosts": [opts.domain_name], "secretName": opts.ingress_tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(spec, opts, spec.name),
        "spec": body,
    }


def ingress(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    if opts.ingress_controller == "generic":
        return generic_ingress(spec, opts)
    h = spec.health
    https = opts.certificate_arn is not None
    lb_attrs = [
        f"idle_timeout.timeout_seconds={opts.idle_timeout}",
        "routing.http.drop_invalid_header_fields.enabled=true",
        f"deletion_protection.enabled={'true' if opts.deletion_protection else 'false'}",
    ]
    annotations = {
        "alb.ingress.kubernetes.io/load-balancer-name": load_balancer_name(spec),
        "alb.ingress.kubernetes.io/scheme": "internal" if opts.internal else "internet-facing",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/inbound-cidrs": ",".join(opts.ingress_cidrs),
        "alb.ingress.kubernetes.io/backend-protocol": "HTTP",
        "alb.ingress.kubernetes.io/healthcheck-path": h.ready_path,
        "alb.ingress.kubernetes.io/healthcheck-port": "traffic-port",
        "alb.ingress.kubernetes.io/healthcheck-interval-seconds": str(h.interval),
        "alb.ingress.kubernetes.io/healthcheck-timeout-seconds": str(h.timeout),
        "alb.ingress.kubernetes.io/healthy-threshold-count": "2",
        "alb.ingress.kubernetes.io/unhealthy-threshold-count": str(max(2, h.retries)),
        "alb.ingress.kubernetes.io/success-codes": "200",
        "alb.ingress.kubernetes.io/load-balancer-attributes": ",".join(lb_attrs),
        "alb.ingress.kubernetes.io/target-group-attributes": f"deregistration_delay.timeout_seconds={spec.drain_seconds}",
    }
    if https:
        annotations.update(
            {
                "alb.ingress.kubernetes.io/listen-ports": json.dumps(
                    [{"HTTP": 80}, {"HTTPS": 443}], separators=(",", ":")
                ),
                "alb.ingress.kubernetes.io/ssl-redirect": "443",
                "alb.ingress.kubernetes.io/certificate-arn": opts.certificate_arn or "",
                "alb.ingress.kubernetes.io/ssl-policy": opts.ssl_policy,
            }
        )
    else:
        annotations["alb.ingress.kubernetes.io/listen-ports"] = json.dumps([{"HTTP": 80}], separators=(",", ":"))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(spec, opts, spec.name, annotations=annotations),
        "spec": {"ingressClassName": "alb", "rules": [_backend_rule(spec, opts)]},
    }


def horizontal_pod_autoscaler(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    s = spec.scaling

    def utilization(resource: str, target: int) -> dict[str, Any]:
        return {
            "type": "Resource",
            "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}},
        }

    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(spec, opts, spec.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": s.min,
            "maxReplicas": s.max,
            "metrics": [utilization("cpu", s.cpu_target), utilization("memory", s.memory_target)],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": min(1800, max(15, s.scale_out_cooldown))}
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": s.scale_in_cooldown,
                    "selectPolicy": "Min",
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                },
            },
        },
    }


def pod_disruption_budget(spec: ServiceSpec, opts: KubernetesOptions) -> dict[str, Any]:
    # maxUnavailable 1 (not minAvailable): a single-replica dev stack can still drain its node.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(spec, opts, spec.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": _selector(spec)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def network_policies(spec: ServiceSpec, opts: KubernetesOptions) -> list[dict[str, Any]]:
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, opts, "default-deny"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    egress: list[dict[str, Any]] = [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"ports": [{"protocol": "TCP", "port": spec.datastore.port}]},
    ]
    if spec.datastore.keyspaces:
        # Keyspaces authenticates with SigV4: the driver needs role credentials.
        if opts.identity_mode == "irsa":
            egress.append({"ports": [{"protocol": "TCP", "port": 443}]})  # STS AssumeRoleWithWebIdentity
        else:
            cidr, port = POD_IDENTITY_AGENT
            egress.append({"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": port}]})
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, opts, spec.name),
        "spec": {
            "podSelector": {"matchLabels": _selector(spec)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": spec.port}]}],
            "egress": egress,
        },
    }
    return [deny, allow]


def render_objects(spec: ServiceSpec, opts: KubernetesOptions) -> list[dict[str, Any]]:
    objects = [namespace(spec, opts), service_account(spec, opts), config_map(spec, opts)]
    if spec.secrets:
        if opts.external_secrets:
            if opts.secret_store_ref is None:
                objects.append(secret_store(spec, opts))
            objects += [external_secret(spec, opts, s) for s in spec.secrets]
        else:
            objects += [kubernetes_secret(spec, opts, s) for s in spec.secrets]
    objects += [deployment(spec, opts), service(spec, opts)]
    if opts.ingress:
        objects.append(ingress(spec, opts))
    objects += [horizontal_pod_autoscaler(spec, opts), pod_disruption_budget(spec, opts), *network_policies(spec, opts)]
    return objects


def object_key(obj: dict[str, Any]) -> str:
    """``Kind/name``: unique within the rendered set."""
    return f"{obj['kind']}/{obj['metadata']['name']}"


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, width=1000)


def _manifests(spec: ServiceSpec, opts: KubernetesOptions, flavour: str) -> dict[str, str]:
    header = (
        f"# CSM on Kubernetes ({flavour}), stack {spec.stack}: rendered by `make render` from Pulumi.{spec.stack}.yaml.\n"
        f"# Kubernetes {opts.kubernetes_version}, namespace {opts.namespace}, secrets via {opts.secret_mode}.\n"
        "# Placeholders until deployed: the image digest (before a build) and account 000000000000 in the role ARN.\n"
    )
    return {"manifests.yaml": header + to_yaml(render_objects(spec, opts))}


def render_files(cfg: StackConfig, spec: ServiceSpec) -> dict[str, str]:
    return _manifests(spec, options_from_config(cfg), "EKS")


def render_kubernetes_files(cfg: StackConfig, spec: ServiceSpec) -> dict[str, str]:
    return _manifests(spec, kubernetes_options(cfg), "any cluster")
