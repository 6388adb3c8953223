"""The Docker Swarm target: the stack config mapped onto a Stack (components/swarm/stack.py).

Secret values come from AWS Secrets Manager (csm:secretSource aws: the current version of
each named secret) or from Pulumi config secrets (csm:secretSource pulumi: ``pulumi config
set --secret <key> ...``). Images in ECR are pulled by the Swarm nodes with the credential of
an ECR authorization token, sent along by ``docker stack deploy --with-registry-auth``; it expires after 12 hours,
so a manager refreshes it with the ECR credential helper (deploy/swarm/registry-auth-refresh, docs/swarm-ecr.md).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.config import NAMESPACE, StackConfig
from components.spec import SecretRef, ServiceSpec
from components.swarm import render
from components.swarm.stack import RegistryAuth, Stack, StackArgs
from components.targets import DeployedImage


def secret_value(secret: SecretRef, opts: pulumi.InvokeOutputOptions) -> pulumi.Output[str]:
    if secret.source == "pulumi":
        return pulumi.Config(NAMESPACE).require_secret(secret.ref)
    return pulumi.Output.secret(
        aws.secretsmanager.get_secret_version_output(secret_id=secret.ref, opts=opts).secret_string
    )


def registry_auth(image: DeployedImage, opts: pulumi.InvokeOutputOptions) -> RegistryAuth | None:
    if image.ecr_repository_arn is None:
        return None
    account = pulumi.Output.from_input(image.ecr_repository_arn).apply(lambda arn: arn.split(":")[4])
    token = aws.ecr.get_authorization_token_output(registry_id=account, opts=opts)
    return RegistryAuth(
        server=token.proxy_endpoint, username=token.user_name, password=pulumi.Output.secret(token.password)
    )


def target_args(cfg: StackConfig, spec: ServiceSpec, image: DeployedImage, opts: pulumi.ResourceOptions) -> StackArgs:
    providers = opts.providers if isinstance(opts.providers, dict) else {}
    invoke = pulumi.InvokeOutputOptions(provider=providers.get("aws"))
    s = cfg.swarm
    if s.host is None:  # the config rules refuse this; a clear error if someone skips them
        raise ValueError("csm:swarmHost is required with target swarm")
    return StackArgs(
        options=render.swarm_options(cfg),
        spec=spec,
        image_ref=image.ref,
        host=s.host,
        secret_values={
            **{render.secret_key(sec): secret_value(sec, invoke) for sec in spec.secrets},
            **(
                {
                    render.PROXY_TLS_KEY: secret_value(
                        SecretRef(name=render.PROXY_TLS_KEY, source=cfg.secrets.source, ref=s.proxy_tls_secret), invoke
                    )
                }
                if s.proxy_tls_secret
                else {}
            ),
        },
        tls_ca_cert=s.tls_ca_cert,
        tls_cert=s.tls_cert,
        tls_key=s.tls_key,
        registry=registry_auth(image, invoke),
        secret_name_key=pulumi.Config(NAMESPACE).require_secret("swarmSecretNameKey")
        if s.secret_name_key is not None
        else None,
        log_retention_days=cfg.service.log_retention_days,
        deletion_protection=cfg.general.deletion_protection,
    )


def deploy(
    cfg: StackConfig, spec: ServiceSpec, image: DeployedImage, opts: pulumi.ResourceOptions
) -> dict[str, pulumi.Input]:
    target = Stack(cfg.name, target_args(cfg, spec, image, opts), opts=opts)
    return {
        "serviceUrl": target.service_url,
        "swarmStack": target.stack_name,
        "swarmSecrets": target.secret_names,
        "logGroup": target.log_group_name,
    }
