"""Every component's type token is csm:<its package>:<its class>, and a component whose token changed
keeps the old one as an alias, so a stack deployed before the rename updates in place (issue 14 item 4).

Each component is constructed with ComponentResource.__init__ replaced by a recorder that stops the
construction there: what is checked is the token and the aliases the component hands Pulumi."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pulumi
import pytest

import components

# The tokens of the components before they were grouped by target (issue 14): each must stay an alias.
RENAMED = {
    "csm:aws:Alarms": "csm:alarms:Alarms",
    "csm:aws:Dashboard": "csm:dashboard:Dashboard",
    "csm:aws:Network": "csm:network:Network",
    "csm:ecs:Autoscaling": "csm:autoscaling:Autoscaling",
    "csm:ecs:LoadBalancer": "csm:alb:LoadBalancer",
    "csm:ecs:Service": "csm:ecs:EcsService",
    "csm:ecs:Target": "csm:ecs:EcsTarget",
    "csm:ecs:TaskRoles": "csm:iam:TaskRoles",
    "csm:eks:Cluster": "csm:eks_cluster:EksCluster",
    "csm:eks:ContainerInsights": "csm:eks_observability:ContainerInsights",
    "csm:eks:ExternalSecretsOperator": "csm:external_secrets:ExternalSecretsOperator",
    "csm:eks:Target": "csm:eks:EksTarget",
    "csm:eks:WorkloadRole": "csm:eks_irsa:WorkloadRole",
    "csm:kubernetes:App": "csm:k8s_app:KubernetesApp",
    "csm:swarm:Stack": "csm:swarm:SwarmStack",
}


class Stop(Exception):
    pass


def component_classes() -> list[type]:
    found = []
    for module in pkgutil.walk_packages(components.__path__, "components."):
        if module.name.endswith(".__main__"):
            continue
        loaded = importlib.import_module(module.name)
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == loaded.__name__:
                found.append(cls)
    return found


def declared(cls: type, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    seen: dict = {}

    def record(self, t, name, props=None, opts=None, *rest, **kw):
        seen["type"], seen["opts"] = t, opts
        raise Stop

    monkeypatch.setattr(pulumi.ComponentResource, "__init__", record)
    with pytest.raises(Stop):
        cls("x", None, None)
    aliases = (seen["opts"].aliases or []) if seen["opts"] is not None else []
    return seen["type"], [a.type_ for a in aliases if isinstance(a, pulumi.Alias)]


CLASSES = component_classes()


def test_every_component_is_found():
    assert len(CLASSES) >= 17, [c.__qualname__ for c in CLASSES]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_the_token_names_the_package_and_the_class(cls, monkeypatch):
    token, _ = declared(cls, monkeypatch)
    parts = cls.__module__.split(".")
    package = parts[1]  # components.<package>.<module>, or components.image
    assert token == f"csm:{package}:{cls.__qualname__}", f"{cls.__module__}.{cls.__qualname__} declares {token}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_a_renamed_token_keeps_its_old_one_as_an_alias(cls, monkeypatch):
    token, aliases = declared(cls, monkeypatch)
    expected = [RENAMED[token]] if token in RENAMED else []
    assert aliases == expected, f"{token}: aliases {aliases}, expected {expected}"
