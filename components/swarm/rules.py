"""Cross-key rules of the Swarm target (manager host, publishing, proxy, secret names)."""

from __future__ import annotations

import typing
from collections.abc import Iterable

from components.config.base import CONFIG_KEY, SECRET_PLACEHOLDER, Problem, qualify
from components.config.rules import P, rule
from components.config.sections import KEYS

if typing.TYPE_CHECKING:
    from components.config.model import StackConfig


@rule("target", "swarmHost", "swarmTlsCaCert", "swarmTlsCert", "swarmTlsKey")
def _swarm_host(c: StackConfig) -> Iterable[Problem]:
    if c.target != "swarm":
        return
    if c.swarm.host is None:
        yield P("swarmHost", "is required with target swarm")
    elif c.swarm.host.startswith("tcp://"):
        for key, value in (
            ("swarmTlsCaCert", c.swarm.tls_ca_cert),
            ("swarmTlsCert", c.swarm.tls_cert),
            ("swarmTlsKey", c.swarm.tls_key),
        ):
            if value is None:
                yield P(key, "is required for a tcp:// swarmHost (the Docker API is only reached over TLS)")


@rule("target", "swarmEndpointMode", "swarmPublishMode")
def _swarm_dnsrr(c: StackConfig) -> Iterable[Problem]:
    if c.target == "swarm" and c.swarm.endpoint_mode == "dnsrr" and c.swarm.publish_mode == "ingress":
        yield P(
            "swarmEndpointMode",
            "dnsrr cannot publish ports through the ingress routing mesh; set swarmPublishMode host",
        )


@rule("target", "swarmPublishMode", "swarmProxyImage")
def _swarm_proxy(c: StackConfig) -> Iterable[Problem]:
    if c.target == "swarm" and c.swarm.publish_mode == "host" and c.swarm.proxy_image is None:
        yield P(
            "swarmProxyImage",
            "is required with swarmPublishMode host (the proxy publishes the port and balances over the replicas)",
        )


@rule("target", "swarmProxyTlsSecret", "swarmPublishMode", "secrets", "secretSource")
def _swarm_proxy_tls(c: StackConfig) -> Iterable[Problem]:
    ref = c.swarm.proxy_tls_secret
    if c.target != "swarm" or ref is None:
        return
    if c.swarm.publish_mode != "host":
        yield P(
            "swarmProxyTlsSecret",
            "needs swarmPublishMode host: TLS is terminated at the proxy, which only runs in host mode",
        )
    if c.secrets.source == "pulumi":
        if not CONFIG_KEY.match(ref) or ref in KEYS:
            yield P("swarmProxyTlsSecret", f"with secretSource pulumi, {ref!r} must name a Pulumi secret config key")
        elif qualify(ref) not in c.present_keys:
            yield P(
                "swarmProxyTlsSecret",
                f"Pulumi secret config key {qualify(ref)} is not set (pulumi config set --secret {ref} < cert-and-key.pem)",
            )


@rule("target", "environment", "swarmSecretNameKey")
def _swarm_secret_name_key(c: StackConfig) -> Iterable[Problem]:
    if c.target != "swarm":
        return
    key = c.swarm.secret_name_key
    if key is None:
        if c.general.environment != "dev":
            yield P(
                "swarmSecretNameKey",
                "is required outside dev: without it Docker secret names carry an unsalted hash of each value, "
                'which confirms a guessed password offline (pulumi config set --secret swarmSecretNameKey "$(openssl rand -hex 32)")',
            )
    elif key != SECRET_PLACEHOLDER and len(key) < 32:
        yield P("swarmSecretNameKey", f"must be at least 32 characters (got {len(key)})")
