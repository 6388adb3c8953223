"""Stack: CSM deployed to a Docker Swarm as one `docker stack`.

- A pulumi-docker ``Provider`` pointed at the Swarm manager (``ssh://``, or ``tcp://`` with
  TLS material), and one ``docker.Secret`` per secret through it. Docker secrets are
  immutable, so each is named after a hash of its content (``versioned_secret_name``): a new
  value is a new secret, which changes the stack file, which rolls the service; Pulumi
  deletes the old secret after the deploy that stopped using it.
- The stack file rendered by components/swarm/render.py with the image digest and those
  secret names: the same renderer and the same bytes as ``make render`` and the end-to-end
  tests (which deploy it to a real local Swarm).
- A pulumi-command ``local.Command`` that runs deploy/swarm/stack-deploy with the stack file
  on standard input (``docker stack deploy --with-registry-auth --prune --detach=false``,
  failing when an update rolled back), re-run whenever the file's hash changes
  (``triggers``), and deploy/swarm/stack-rm on destroy.
- With awslogs on, the CloudWatch log group the driver writes to, with its retention.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_docker as docker

from components import renamed
from components.spec import ServiceSpec
from components.swarm import render

DEPLOY_SCRIPT = "deploy/swarm/stack-deploy"
REMOVE_SCRIPT = "deploy/swarm/stack-rm"


@dataclass
class RegistryAuth:
    server: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(kw_only=True)
class StackArgs:
    options: render.SwarmOptions
    spec: ServiceSpec
    image_ref: pulumi.Input[str]
    host: str  # ssh://user@host, tcp://host:port (TLS) or unix:///path
    secret_values: Mapping[str, pulumi.Input[str]]  # secret key -> value
    tls_ca_cert: pulumi.Input[str] | None
    tls_cert: pulumi.Input[str] | None
    tls_key: pulumi.Input[str] | None
    registry: RegistryAuth | None
    secret_name_key: pulumi.Input[str] | None  # HMAC key of the secret names (a Pulumi secret)
    log_retention_days: int | None  # awslogs: the log group's retention (default: the spec's)
    deletion_protection: bool
    deploy_timeout: int = 900


def file_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def endpoint_host(host: str) -> str:
    """The address users reach the published port at, from the Docker host URL."""
    if host.startswith("unix://"):
        return "127.0.0.1"
    return urlsplit(host).hostname or host


class Stack(pulumi.ComponentResource):
    stack_name: pulumi.Output[str]
    stack_file: pulumi.Output[str]
    secret_names: pulumi.Output[dict]
    service_url: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: StackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:swarm:Stack", name, None, renamed(opts, "csm:swarm:SwarmStack"))
        options, spec = args.options, args.spec
        stack = options.stack_name
        keys = render.secret_keys(spec, options)
        missing = sorted(set(keys) - set(args.secret_values))
        if missing:
            raise ValueError(f"Stack {name}: no value for secret(s) {', '.join(missing)}")
        tls = (args.tls_ca_cert, args.tls_cert, args.tls_key)
        if args.host.startswith("tcp://") and any(t is None for t in tls):
            raise ValueError(f"Stack {name}: a tcp:// host needs tls_ca_cert, tls_cert and tls_key")

        provider = docker.Provider(
            f"{name}-docker",
            host=args.host,
            ca_material=_secret(args.tls_ca_cert),
            cert_material=_secret(args.tls_cert),
            key_material=_secret(args.tls_key),
            opts=pulumi.ResourceOptions(parent=self),
        )
        names: dict[str, pulumi.Output[str]] = {}
        secrets: list[pulumi.Resource] = []
        for key in keys:
            value = pulumi.Output.secret(args.secret_values[key])
            name_key = (
                pulumi.Output.secret(args.secret_name_key)
                if args.secret_name_key is not None
                else pulumi.Output.from_input("")
            )
            versioned = pulumi.Output.unsecret(
                pulumi.Output.all(value, name_key).apply(functools.partial(_versioned_name, stack, key))
            )
            secret = docker.Secret(
                f"{name}-secret-{key}",
                name=versioned,
                data=value.apply(lambda v: base64.b64encode(v.encode()).decode()),
                # Not com.docker.stack.namespace: `docker stack rm` would delete the secrets with the stack.
                labels=[
                    docker.SecretLabelArgs(label="csm.stack", value=stack),
                    docker.SecretLabelArgs(label="csm.secret", value=key),
                ],
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            secrets.append(secret)
            names[key] = secret.name

        depends: list[pulumi.Resource] = list(secrets)
        self.log_group_name = pulumi.Output.from_input("")
        if options.aws_logs:
            log_group = aws.cloudwatch.LogGroup(
                f"{name}-logs",
                name=render.log_group_name(spec),
                retention_in_days=args.log_retention_days or spec.log_retention_days,
                opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
            )
            depends.append(log_group)
            self.log_group_name = log_group.name

        self.secret_names = pulumi.Output.all(**names) if names else pulumi.Output.from_input({})
        self.stack_file = pulumi.Output.all(image=args.image_ref, names=self.secret_names).apply(
            lambda a: render.render_stack(spec.with_image(a["image"]), options, a["names"])
        )

        environment: dict[str, pulumi.Input[str]] = {
            "DOCKER_HOST": args.host,
            "CSM_SWARM_DEPLOY_TIMEOUT": str(args.deploy_timeout),
        }
        secret_env: dict[str, pulumi.Output[str] | None] = {}
        if args.host.startswith("tcp://"):
            secret_env.update(
                CSM_SWARM_TLS_CA=_secret(args.tls_ca_cert),
                CSM_SWARM_TLS_CERT=_secret(args.tls_cert),
                CSM_SWARM_TLS_KEY=_secret(args.tls_key),
            )
        if args.registry is not None:
            environment.update(CSM_REGISTRY_SERVER=args.registry.server, CSM_REGISTRY_USER=args.registry.username)
            secret_env["CSM_REGISTRY_PASSWORD"] = _secret(args.registry.password)
        environment.update({k: v for k, v in secret_env.items() if v is not None})
        deploy_cmd = f"{DEPLOY_SCRIPT} {stack}"
        self.deploy = command.local.Command(
            f"{name}-deploy",
            create=deploy_cmd,
            update=deploy_cmd,
            delete=f"{REMOVE_SCRIPT} {stack}",
            stdin=self.stack_file,
            # No `dir`: Pulumi runs the command in the project directory, and an absolute path in
            # the state would re-run the deploy whenever the checkout moves.
            environment=environment,
            triggers=[self.stack_file.apply(file_hash)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

        self.stack_name = pulumi.Output.from_input(stack)
        scheme = "https" if options.proxy_tls_secret else "http"
        url = f"{scheme}://{endpoint_host(args.host)}:{options.published_port}"
        # Known once the deploy converged: a failed or rolled-back rollout fails the command.
        self.service_url = self.deploy.stdout.apply(lambda _: url)
        self.register_outputs(
            {
                "stack_name": self.stack_name,
                "stack_file": self.stack_file,
                "secret_names": self.secret_names,
                "service_url": self.service_url,
                "log_group_name": self.log_group_name,
            }
        )


def _versioned_name(stack: str, key: str, values: list[Any]) -> str:
    return render.versioned_secret_name(stack, key, values[0], values[1] or None)


def _secret(value: pulumi.Input[str] | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value)
