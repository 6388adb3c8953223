"""The whole Pulumi program, per stack, under mocks: every resource it registers passes the
policy pack (what `pulumi preview --policy-pack policy` would enforce, values known)."""

from __future__ import annotations

import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi_policy import ResourceValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from harness.pulumi_mocks import CsmMocks, install, run_program

install(CsmMocks())

from components.stackfiles import as_pulumi_config, load_stack_values  # noqa: E402
from policy import csm_policies as p  # noqa: E402

# The pack as __main__.py builds it: with the justified exceptions in policy/exceptions.yaml.
POLICIES = p.build_policies(p.load_exceptions(p.Path(p.__file__).with_name("exceptions.yaml")))
CHECKED_TYPES = {
    p.ECS_TASK,
    p.ECR_REPOSITORY,
    p.LOG_GROUP,
    p.SECURITY_GROUP,
    p.SG_INGRESS_RULE,
    p.SG_RULE,
    *p.POD_SPEC_PATHS,
}


@pytest.fixture(scope="module", params=["dev", "prod"])
def program(request):
    """Runs the program, remembering each resource's URN (its parents' types decide the ALB exemption)."""
    urns: dict[tuple[str, str], str] = {}
    make_urn = pulumi_mocks.MockMonitor.make_urn

    def recording(self, parent, type_, name):
        urn = make_urn(self, parent, type_, name)
        urns[(type_, name)] = urn
        return urn

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pulumi_mocks.MockMonitor, "make_urn", recording)
        mocks = run_program(request.param, as_pulumi_config(load_stack_values(request.param)))
    return request.param, mocks, urns


def test_every_registered_resource_passes_the_pack(program):
    stack, mocks, urns = program
    found: list[str] = []
    for r in mocks.registered:
        urn = urns[(r.typ, r.name)]
        args = ResourceValidationArgs(r.typ, unknown_checking_proxy(dict(r.inputs)), urn, r.name, None, None)
        for policy in POLICIES:
            policy.validate(args, lambda message, urn=None, name=policy.name: found.append(f"{name}: {message}"))
    assert found == [], f"{stack}: " + "\n".join(found)


def test_the_pack_saw_the_resources_it_governs(program):
    stack, mocks, urns = program
    seen = {r.typ for r in mocks.registered} & CHECKED_TYPES
    assert {p.ECR_REPOSITORY, p.LOG_GROUP, p.SECURITY_GROUP, p.SG_INGRESS_RULE} <= seen, f"{stack}: {sorted(seen)}"
    public = [r for r in mocks.of_type(p.SG_INGRESS_RULE) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"]
    assert public and all("csm:ecs:LoadBalancer" in urns[(r.typ, r.name)] for r in public), (
        f"{stack}: internet-facing ingress exists only under the load balancer component"
    )
