"""Component args repeat no default of the config model (issue 14 item 5): every field the stack
config sets is required and keyword-only, so a default changes in the model alone.

A field may keep a default only when no config key feeds it; each one is listed here with why."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import components

NOT_CONFIG = {
    "ImageArgs": {
        "target": "the Dockerfile's final stage",
        "python": "the interpreter that runs the scan gate",
        "allowlist": "a repository file",
        "report_dir": "a build folder",
        "project_root": "the checkout",
    },
    "AlarmsArgs": {"service_metrics": "EKS passes its Container Insights metrics; ECS uses the service's"},
    "LoadBalancerArgs": {"private_paths": "the service's private routes"},
    "ClusterArgs": {
        "node_disk_gib": "no config key",
        "public_access_cidrs": "no config key",
        "node_autoscaler": "no config key",
        "metrics_server": "no config key",
    },
    "ExternalSecretsArgs": {"chart_version": "the pinned chart"},
    "ContainerInsightsArgs": {"oidc_provider_arn": "the cluster's output", "oidc_issuer": "the cluster's output"},
    "WorkloadRoleArgs": {
        "oidc_provider_arn": "the cluster's output",
        "oidc_issuer": "the cluster's output",
        "statements": "built by the target",
        "managed_policy_arns": "built by the target",
        "trusted_role_arns": "built by the target",
        "description": "built by the target",
        "associate": "built by the target",
    },
    "AppArgs": {
        "image_ref": "the deployed image",
        "role_arn": "the workload role's output",
        "secret_values": "read by the target",
        "depends_on": "resources of the target",
    },
    "DashboardArgs": {"alarm_arns": "the alarms' output"},
    "StackArgs": {"deploy_timeout": "no config key"},
}


def args_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(components.__path__, "components."):
        if info.name.endswith(".__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                dataclasses.is_dataclass(obj)
                and isinstance(obj, type)
                and obj.__module__ == module.__name__
                and (name.endswith("Args") or name == "AlarmThresholds")
            ):
                found[f"{module.__name__}.{name}"] = obj
    return found


def defaulted(cls: type) -> set[str]:
    return {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def test_every_component_args_class_is_found():
    names = {path.rpartition(".")[2] for path in args_classes()}
    assert {"ImageArgs", "NetworkArgs", "LoadBalancerArgs", "ClusterArgs", "StackArgs", "TargetArgs"} <= names, names


def test_only_fields_no_config_key_feeds_have_defaults():
    wrong = {
        path: sorted(defaulted(cls) - set(NOT_CONFIG.get(cls.__name__, {})))
        for path, cls in args_classes().items()
        if defaulted(cls) - set(NOT_CONFIG.get(cls.__name__, {}))
    }
    assert wrong == {}, f"defaults that the config model owns: {wrong}"


def test_args_are_keyword_only():
    positional = [path for path, cls in args_classes().items() if not all(f.kw_only for f in dataclasses.fields(cls))]
    assert positional == [], f"args classes that take positional fields: {positional}"
