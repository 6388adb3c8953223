"""Stack-config rules of the EKS target (components/eks/rules.py): what EKS on Fargate cannot run."""

from __future__ import annotations

import pytest

from components.config import ConfigError, StackConfig
from components.stackfiles import load_stack_values

FARGATE = {
    "csm:target": "eks",
    "csm:eksNodeMode": "fargate",
    "csm:serviceArchitecture": "x86_64",
    "csm:eksContainerInsights": False,
    "csm:imagePlatforms": ["linux/amd64"],
}


def load(**overrides) -> StackConfig:
    return StackConfig.load({**load_stack_values("dev"), **FARGATE, **overrides}, stack="dev")


def test_fargate_config_that_fargate_can_run_parses():
    assert load().eks.node_mode == "fargate"


@pytest.mark.parametrize(
    "override,key,fragment",
    [
        (
            {"csm:serviceArchitecture": "arm64", "csm:imagePlatforms": ["linux/arm64"]},
            "csm:serviceArchitecture",
            "x86_64 pods only",
        ),
        ({"csm:eksIdentityMode": "pod-identity"}, "csm:eksIdentityMode", "Pod Identity is not available on Fargate"),
        ({"csm:eksContainerInsights": True}, "csm:eksContainerInsights", "DaemonSets"),
    ],
)
def test_fargate_rule_names_the_key(override, key, fragment):
    with pytest.raises(ConfigError) as err:
        load(**override)
    assert key in err.value.keys, err.value
    assert any(fragment in p.reason for p in err.value.problems if p.key == key), err.value


def test_fargate_rules_do_not_apply_to_existing_clusters():
    cfg = load(
        **{
            "csm:eksClusterMode": "existing",
            "csm:eksClusterName": "shared",
            "csm:eksKubeconfig": "apiVersion: v1",
            "csm:eksIdentityMode": "pod-identity",
            "csm:eksContainerInsights": True,
        }
    )
    assert cfg.eks.cluster_mode == "existing"


def test_managed_nodes_may_run_arm64_with_pod_identity():
    cfg = load(
        **{
            "csm:eksNodeMode": "managed",
            "csm:serviceArchitecture": "arm64",
            "csm:imagePlatforms": ["linux/arm64"],
            "csm:eksIdentityMode": "pod-identity",
            "csm:eksContainerInsights": True,
        }
    )
    assert cfg.eks.identity_mode == "pod-identity"


def test_pod_identity_with_aws_secrets_needs_the_operator_this_stack_installs():
    values = {
        **load_stack_values("prod"),
        "csm:target": "eks",
        "csm:eksIdentityMode": "pod-identity",
        "csm:eksInstallExternalSecrets": False,
    }
    with pytest.raises(ConfigError) as err:
        StackConfig.load(values, stack="prod")
    assert "csm:eksInstallExternalSecrets" in err.value.keys, err.value


def test_irsa_works_with_a_pre_installed_operator():
    values = {**load_stack_values("prod"), "csm:target": "eks", "csm:eksInstallExternalSecrets": False}
    assert StackConfig.load(values, stack="prod").eks.install_external_secrets is False
