"""The EKS target: cluster (existing or new), the service's IAM role, External Secrets Operator,
the Kubernetes objects, Container Insights and the alarm set.

``Target`` composes the components; ``deploy`` maps the stack config onto its args (the
target-dispatch entry point, see components/targets.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import per_stack, renamed
from components.aws.alarms import Alarms, AlarmsArgs, AlarmThresholds, eks_service_metrics
from components.aws.from_config import alarm_thresholds, network_args
from components.aws.policies import secrets_policy, task_policy
from components.config import StackConfig
from components.eks.cluster import Cluster, ClusterArgs
from components.eks.external_secrets import ExternalSecretsArgs, ExternalSecretsOperator
from components.eks.observability import (
    ContainerInsights,
    ContainerInsightsArgs,
    application_log_group,
    dashboard_url,
    ingress_alb_suffixes,
)
from components.eks.workload_role import WorkloadRole, WorkloadRoleArgs
from components.kubernetes import render
from components.kubernetes.app import App, AppArgs
from components.spec import ServiceSpec
from components.targets import DeployedImage


@dataclass(kw_only=True)
class TargetArgs:
    spec: ServiceSpec
    image_ref: pulumi.Input[str]
    region: str
    cluster: ClusterArgs
    options: render.KubernetesOptions
    install_external_secrets: bool
    container_insights: bool
    kms_key_arns: Sequence[str]
    secret_values: Mapping[str, pulumi.Input[str]]  # kubernetes-secret mode
    alarms: AlarmThresholds


def role_statements(
    spec: ServiceSpec,
    options: render.KubernetesOptions,
    secret_arns: Sequence[str],
    kms_key_arns: Sequence[str],
    region: str,
    account_id: str,
) -> list[dict]:
    """What the service's ServiceAccount role may do: read its own secrets (ESO reads them as this
    role) and, with Keyspaces, its own keyspace."""
    statements = (
        secrets_policy(secret_arns=secret_arns, kms_key_arns=kms_key_arns, region=region)
        if options.external_secrets
        else []
    )
    keyspaces = task_policy(
        keyspaces=spec.datastore.keyspaces,
        keyspace=spec.datastore.keyspace,
        region=region,
        account_id=account_id,
        execute_command=False,
    )
    return statements + (keyspaces["Statement"] if keyspaces else [])


def needs_role(spec: ServiceSpec, options: render.KubernetesOptions) -> bool:
    return bool(spec.secrets and options.external_secrets) or spec.datastore.keyspaces


class Target(pulumi.ComponentResource):
    service_url: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    role_arn: pulumi.Output[str] | None
    log_group_name: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]
    alarm_topic_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:eks:Target", name, None, renamed(opts, "csm:eks:EksTarget"))
        spec, options = args.spec, args.options
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)

        cluster = Cluster(f"{name}-cluster", args.cluster, opts=child)
        if args.cluster.mode == "create" and args.cluster.node_mode == "fargate":
            # https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html (refused in prod by the config model)
            pulumi.log.warn(
                f"{name}: EKS does not enforce NetworkPolicies for Pods on Fargate: the default-deny policies are not applied",
                resource=self,
            )
        on_cluster = pulumi.ResourceOptions(
            parent=self, providers={"kubernetes": cluster.provider}, depends_on=cluster.workers
        )
        ready: list[pulumi.Resource] = list(cluster.workers)

        eso_role: list[pulumi.Output[str]] = []
        uses_eso = options.external_secrets and bool(spec.secrets)
        if uses_eso and args.install_external_secrets:
            eso = ExternalSecretsOperator(
                f"{name}-eso",
                ExternalSecretsArgs(
                    identity_mode=options.identity_mode,
                    cluster_name=cluster.cluster_name,
                    kubernetes_version=options.kubernetes_version,
                ),
                opts=on_cluster,
            )
            ready.append(eso.release)
            if eso.controller_role_arn is not None:
                eso_role.append(eso.controller_role_arn)

        role_arn: pulumi.Output[str] | None = None
        if needs_role(spec, options):
            arns = (
                [
                    aws.secretsmanager.get_secret_output(arn=s.ref, opts=invoke).arn
                    if s.is_arn
                    else aws.secretsmanager.get_secret_output(name=s.ref, opts=invoke).arn
                    for s in spec.secrets
                ]
                if options.external_secrets
                else []
            )
            account = aws.get_caller_identity_output(opts=invoke).account_id
            statements = pulumi.Output.all(account, pulumi.Output.all(*arns)).apply(
                lambda a: role_statements(spec, options, a[1], args.kms_key_arns, args.region, a[0])
            )
            role = WorkloadRole(
                f"{name}-app",
                WorkloadRoleArgs(
                    mode=options.identity_mode,
                    cluster_name=cluster.cluster_name,
                    namespace=options.namespace,
                    service_account=spec.name,
                    oidc_provider_arn=cluster.oidc_provider_arn,
                    oidc_issuer=cluster.oidc_issuer,
                    statements=statements,
                    trusted_role_arns=eso_role,
                    description=f"CSM ({options.namespace}/{spec.name}): its own secrets and keyspace only",
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=cluster.workers),
            )
            role_arn = role.role_arn
        else:
            options = dataclasses.replace(options, role_arn=None)

        app = App(
            f"{name}-k8s",
            AppArgs(
                spec=spec,
                options=options,
                image_ref=args.image_ref,
                role_arn=role_arn,
                secret_values=args.secret_values,
                depends_on=ready,
            ),
            opts=on_cluster,
        )

        self.alarm_topic_arn = None
        cluster_name = cluster.cluster_name
        if args.container_insights:
            ContainerInsights(
                f"{name}-insights",
                ContainerInsightsArgs(
                    identity_mode=options.identity_mode,
                    cluster_name=cluster_name,
                    oidc_provider_arn=cluster.oidc_provider_arn,
                    oidc_issuer=cluster.oidc_issuer,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=cluster.workers),
            )
            if app.ingress_hostname is not None:
                alb, tg = ingress_alb_suffixes(
                    app.ingress_hostname,
                    load_balancer_name=render.load_balancer_name(spec),
                    cluster_name=cluster_name,
                    namespace=options.namespace,
                    ingress_name=spec.name,
                    opts=pulumi.InvokeOptions(parent=self),
                )
                alarms = Alarms(
                    f"{name}-alarms",
                    AlarmsArgs(
                        cluster_name=cluster_name,
                        service_name=spec.name,
                        alb_arn_suffix=alb,
                        target_group_arn_suffix=tg,
                        thresholds=args.alarms,
                        service_metrics=eks_service_metrics(
                            cluster_name, options.namespace, spec.name, spec.scaling.min
                        ),
                    ),
                    opts=child,
                )
                self.alarm_topic_arn = alarms.topic_arn

        scheme = "https" if options.certificate_arn else "http"
        if options.domain_name:
            host: pulumi.Output = pulumi.Output.from_input(options.domain_name)
        elif app.ingress_hostname is not None:
            host = app.ingress_hostname
        else:
            host = pulumi.Output.from_input(f"{spec.name}.{options.namespace}.svc.cluster.local")
        self.service_url = host.apply(lambda h: f"{scheme}://{h}")
        self.cluster_name = cluster_name
        self.namespace = app.namespace
        self.role_arn = role_arn
        self.log_group_name = cluster_name.apply(application_log_group)
        self.dashboard_url = cluster_name.apply(lambda c: dashboard_url(args.region, c))
        self.register_outputs(
            {
                "service_url": self.service_url,
                "cluster_name": self.cluster_name,
                "namespace": self.namespace,
                "log_group_name": self.log_group_name,
                "dashboard_url": self.dashboard_url,
            }
        )


def target_args(
    cfg: StackConfig,
    spec: ServiceSpec,
    image: DeployedImage,
    secret_values: Mapping[str, pulumi.Input[str]] | None = None,
) -> TargetArgs:
    e = cfg.eks
    options = render.options_from_config(cfg)
    cluster_name = e.cluster_name or per_stack(cfg.name, cfg.stack)
    return TargetArgs(
        spec=spec,
        image_ref=image.ref,
        region=cfg.aws_region or "",
        cluster=ClusterArgs(
            cluster_name=cluster_name,
            mode=e.cluster_mode,
            kubeconfig=e.kubeconfig,
            version=e.kubernetes_version,
            node_mode=e.node_mode,
            architecture=cfg.service.architecture,
            instance_types=e.instance_types,
            node_min=e.node_min,
            node_desired=e.node_desired,
            node_max=e.node_max,
            network=network_args(cfg),
            fargate_namespaces=[e.namespace, render.ESO_NAMESPACE] if e.install_external_secrets else [e.namespace],
            pod_identity_agent=e.identity_mode == "pod-identity",
            deletion_protection=cfg.general.deletion_protection,
        ),
        options=options,
        install_external_secrets=e.install_external_secrets,
        container_insights=e.container_insights,
        kms_key_arns=cfg.secrets.kms_key_arns,
        secret_values=dict(secret_values or {}),
        alarms=alarm_thresholds(cfg),
    )


def deploy(
    cfg: StackConfig, spec: ServiceSpec, image: DeployedImage, opts: pulumi.ResourceOptions
) -> dict[str, pulumi.Input]:
    config = pulumi.Config("csm")
    values = {s.name: config.require_secret(s.ref) for s in spec.secrets} if cfg.secrets.source == "pulumi" else {}
    target = Target(cfg.name, target_args(cfg, spec, image, values), opts=opts)
    outputs: dict[str, pulumi.Input] = {
        "serviceUrl": target.service_url,
        "cluster": target.cluster_name,
        "namespace": target.namespace,
        "logGroup": target.log_group_name,
        "dashboard": target.dashboard_url,
    }
    if target.alarm_topic_arn is not None:
        outputs["alarmTopic"] = target.alarm_topic_arn
    return outputs
