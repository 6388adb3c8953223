"""What the renderers produce for each stack passes the policy pack: the ECS task definition and
every Kubernetes object, fed to the validators as the Pulumi resources that carry them."""

from __future__ import annotations

import json

import pytest
import yaml
from pulumi_policy import ResourceValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from components import render_all
from policy import csm_policies as p

VALIDATORS = [validate for _, _, validate in p.POLICY_SPECS]


def violations(resource_type: str, name: str, props: dict) -> list[str]:
    args = ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(props),
        f"urn:pulumi:stack::csm::{resource_type}::{name}",
        name,
        None,
        None,
    )
    found: list[str] = []
    for validate in VALIDATORS:
        validate(args, lambda message, urn=None, v=validate: found.append(f"{v.__name__}: {message}"))
    return found


def k8s_type(obj: dict) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


@pytest.fixture(scope="module", params=["dev", "prod"])
def rendered(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"rendered-{request.param}")
    render_all.render_stack(request.param, out=out)
    return out / request.param


def test_rendered_ecs_task_definition_passes_the_pack(rendered):
    task = json.loads((rendered / "ecs" / "task-definition.json").read_text())
    props = dict(task, containerDefinitions=json.dumps(task["containerDefinitions"]))
    assert violations(p.ECS_TASK, task["family"], props) == []


def test_rendered_kubernetes_objects_pass_the_pack(rendered):
    docs = [d for d in yaml.safe_load_all((rendered / "eks" / "manifests.yaml").read_text()) if d]
    workloads = [d for d in docs if k8s_type(d) in p.POD_SPEC_PATHS]
    assert workloads, "the EKS renderer produced no workload"
    found = {f"{d['kind']}/{d['metadata']['name']}": violations(k8s_type(d), d["metadata"]["name"], d) for d in docs}
    assert {k: v for k, v in found.items() if v} == {}
