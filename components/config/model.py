"""StackConfig: every section, parsed once; ``load`` reports every bad key and every broken rule together."""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from components import per_stack
from components.config.base import AWS_REGION_KEY, NAMESPACE, REGION, ConfigError, Problem, qualify
from components.config.rules import RULES
from components.config.sections import (
    KEYS,
    SECRET_KEYS,
    SECTIONS,
    AlarmsConfig,
    CassandraConfig,
    EcsConfig,
    EksConfig,
    GeneralConfig,
    HealthConfig,
    ImageConfig,
    IngressConfig,
    KubernetesConfig,
    NetworkConfig,
    ScalingConfig,
    SecretsConfig,
    ServiceConfig,
    SwarmConfig,
)


class StackConfig(BaseModel):
    """The whole stack config. Build it with ``StackConfig.load`` / ``from_pulumi``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stack: str = ""
    aws_region: str | None = None
    present_keys: frozenset[str] = frozenset()  # every key set in the stack (to check pulumi secret refs)
    general: GeneralConfig
    image: ImageConfig = ImageConfig()
    service: ServiceConfig = ServiceConfig()
    health: HealthConfig = HealthConfig()
    scaling: ScalingConfig = ScalingConfig()
    secrets: SecretsConfig = SecretsConfig()
    cassandra: CassandraConfig = CassandraConfig()
    network: NetworkConfig = NetworkConfig()
    ingress: IngressConfig = IngressConfig()
    alarms: AlarmsConfig = AlarmsConfig()
    ecs: EcsConfig = EcsConfig()
    eks: EksConfig = EksConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    swarm: SwarmConfig = SwarmConfig()

    @property
    def target(self) -> str:
        return self.general.target

    @property
    def prod(self) -> bool:
        return self.general.environment == "prod"

    @property
    def name(self) -> str:
        return self.general.service_name

    @property
    def image_repository(self) -> str:
        """The ECR repository name: csm:imageRepository, else '<serviceName>-<stack>' (unique per stack in one account)."""
        return self.image.repository or per_stack(self.name, self.stack)

    @property
    def pulumi_secret_keys(self) -> list[str]:
        """Config keys holding secret values (secretSource pulumi), to read with require_secret."""
        return [e.ref for e in self.secrets.entries] if self.secrets.source == "pulumi" else []

    # ---- parsing

    @classmethod
    def load(cls, values: Mapping[str, Any], stack: str = "", secret_keys: Iterable[str] | None = None) -> StackConfig:
        """``secret_keys``: the keys set as secrets, when known (the engine's, or a stack file's where
        an encrypted value reads as ``SECRET_PLACEHOLDER``); secret-only keys set otherwise are refused."""
        problems: list[Problem] = [*_plaintext_secrets(values, secret_keys)] if secret_keys is not None else []
        sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        region: Any = None
        present: set[str] = set()
        for raw_key, value in values.items():
            namespace, _, key = raw_key.rpartition(":")
            full = qualify(raw_key)
            present.add(full)
            if full == AWS_REGION_KEY:
                region = value
                continue
            if namespace not in ("", NAMESPACE):
                continue  # other providers' config (aws:profile, ...) is not ours to check
            if key not in KEYS:
                continue  # checked below, after we know which keys are pulumi secret refs
            section, name = KEYS[key]
            field = SECTIONS[section].model_fields[name]
            if isinstance(value, str) and typing.get_origin(field.annotation) is list:
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    problems.append(Problem(full, f"must be a list (JSON array) of strings ({exc.msg})"))
                    continue
            sections[section][key] = value

        bad: set[str] = {p.key for p in problems}
        parsed: dict[str, Any] = {}  # section name -> its own model
        for section, model in SECTIONS.items():
            data = {k: v for k, v in sections[section].items() if qualify(k) not in bad}
            try:
                parsed[section] = model.model_validate(data)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = err["loc"]
                    key = qualify(str(loc[0])) if loc else f"{NAMESPACE}:{section}"
                    bad.add(key)
                    problems.append(Problem(key, _reason(err)))
                retry = {k: v for k, v in data.items() if qualify(k) not in bad}
                try:
                    parsed[section] = model.model_validate(retry)
                except ValidationError:
                    parsed[section] = None  # a required key is missing or bad

        if region is not None and not (isinstance(region, str) and REGION.match(region)):
            problems.append(Problem(AWS_REGION_KEY, f"is not an AWS region name (got {region!r})"))
            bad.add(AWS_REGION_KEY)
            region = None

        if parsed.get("general") is None:
            raise ConfigError(problems, stack)
        cfg = cls(stack=stack, aws_region=region, present_keys=frozenset(present), **parsed)

        secret_refs = {qualify(r) for r in cfg.pulumi_secret_keys}
        for full in sorted(present):
            namespace, _, key = full.rpartition(":")
            if namespace == NAMESPACE and key not in KEYS and full not in secret_refs:
                hint = difflib.get_close_matches(key, KEYS, n=1)
                problems.append(
                    Problem(full, "is not a known key" + (f"; did you mean {qualify(hint[0])}?" if hint else ""))
                )

        for keys, check in RULES:
            if not any(qualify(k) in bad for k in keys):
                problems.extend(check(cfg))
        if problems:
            raise ConfigError(problems, stack)
        return cfg

    @classmethod
    def from_pulumi(cls) -> StackConfig:
        """Parse the running program's (or the mocks') config."""
        import pulumi
        from pulumi.runtime import config as runtime_config

        values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
        secret_keys = [k for k in values if runtime_config.is_config_secret(k)]
        return cls.load(values, stack=pulumi.get_stack(), secret_keys=secret_keys)


def _plaintext_secrets(values: Mapping[str, Any], secret_keys: Iterable[str]) -> Iterable[Problem]:
    # Pulumi.yaml cannot mark these keys `secret: true` (the engine then rejects their "" default),
    # so the model checks that a value given for one is encrypted.
    from components.stackfiles import SECRET_PLACEHOLDER

    secret = {qualify(k) for k in secret_keys}
    for raw_key, value in values.items():
        full = qualify(raw_key)
        namespace, _, key = full.rpartition(":")
        if (
            namespace != NAMESPACE
            or key not in SECRET_KEYS
            or value in ("", None)
            or value == SECRET_PLACEHOLDER
            or full in secret
        ):
            continue
        yield Problem(
            full, f"must be set as a secret (pulumi config set --secret {key} ...): it is stored in plaintext"
        )


def _reason(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "missing":
        return "is required"
    loc = err["loc"]
    if len(loc) > 1:
        msg = f"item {loc[1]}: {msg}"
    if "input" in err and err["type"] not in ("value_error",) and not isinstance(err["input"], (dict,)):
        msg = f"{msg} (got {err['input']!r})"
    return msg


# Each rule module registers its rules when imported: the general and prod ones here, each target's beside it.
from components.config import rules_general, rules_prod  # noqa: E402, F401
from components.ecs import rules as ecs_rules  # noqa: E402, F401
from components.eks import rules as eks_rules  # noqa: E402, F401
from components.kubernetes import rules as kubernetes_rules  # noqa: E402, F401
from components.swarm import rules as swarm_rules  # noqa: E402, F401
