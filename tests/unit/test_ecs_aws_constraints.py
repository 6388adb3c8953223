"""Issue 13, the ECS target: what would break or leak on AWS that no mock sees by itself, each pinned to the AWS
documentation it follows."""

from __future__ import annotations

import json
import re

import pulumi_aws as aws
import pytest

from harness.pulumi_mocks import ACCOUNT, ROOT, CsmMocks, construct, install, run_program

mocks = install(CsmMocks())

from components.config import StackConfig  # noqa: E402
from components.ecs import render  # noqa: E402
from components.spec import build_spec  # noqa: E402
from components.stackfiles import as_pulumi_config, load_stack_values  # noqa: E402
from harness.ecs_service import make  # noqa: E402


def test_fargate_capacity_providers_are_associated_with_the_cluster():
    # "The Fargate capacity providers ... only need to be associated with a cluster to be used";
    # a service naming an unassociated one fails with InvalidParameterException.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html
    rec, _ = construct(make)
    ccp = rec.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs
    strategy = rec.one("aws:ecs/service:Service").inputs["capacityProviderStrategies"]
    assert {s["capacityProvider"] for s in strategy} <= set(ccp["capacityProviders"])
    assert ccp["clusterName"] == rec.one("aws:ecs/cluster:Cluster").outputs["name"]


def test_service_is_created_after_the_capacity_provider_association(monkeypatch):
    seen: list = []
    real = aws.ecs.Service

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, name, *args, opts=None, **kwargs):
            seen.extend(opts.depends_on or [])
            super().__init__(name, *args, opts=opts, **kwargs)

    monkeypatch.setattr(aws.ecs, "Service", Spy)
    construct(make)
    assert any(isinstance(d, aws.ecs.ClusterCapacityProviders) for d in seen), seen


def _stack(stack: str, **overrides) -> dict[str, str]:
    return as_pulumi_config({**load_stack_values(stack), **overrides})


@pytest.fixture(scope="module")
def dev():
    return run_program("dev", _stack("dev"))


def test_public_listener_refuses_operational_endpoints(dev):
    # /metrics and /info answer without a token; the internet-facing listener returns 404 for them.
    rules = dev.of_type("aws:lb/listenerRule:ListenerRule")
    assert len(rules) == 1
    rule = rules[0].inputs
    paths = rule["conditions"][0]["pathPattern"]["values"]
    assert {"/metrics", "/metrics/*", "/info", "/info/*"} <= set(paths)
    assert rule["actions"][0]["type"] == "fixed-response" and rule["actions"][0]["fixedResponse"]["statusCode"] == "404"
    https = dev.one("aws:lb/listener:Listener", "https")
    assert rule["listenerArn"] == https.outputs["arn"], "the rule sits on the listener that forwards"
    assert int(rule["priority"]) == 1


def test_health_checks_still_reach_the_targets(dev):
    # Target group health checks go to the targets directly, not through the listener rules.
    hc = dev.one("aws:lb/targetGroup:TargetGroup").inputs["healthCheck"]
    assert not hc["path"].startswith(("/metrics", "/info"))


def test_tmp_is_writable_by_65532_on_fargate(dev):
    # The task's /tmp is a bind mount, root-owned 0755 unless the image declares the path a VOLUME: ECS then copies
    # the image's /tmp (mode 1777) into it. https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html
    td = dev.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    container = json.loads(td["containerDefinitions"])[0]
    mount = next(m for m in container["mountPoints"] if m["containerPath"] == "/tmp")
    volume = next(v for v in td["volumes"] if v["name"] == mount["sourceVolume"])
    assert set(volume) == {"name"}, f"a task-scoped bind mount, nothing else: {volume}"
    assert container["readonlyRootFilesystem"] is True and mount["readOnly"] is False
    dockerfile = (ROOT / "app/Dockerfile").read_text()
    runtime = dockerfile.split("FROM scratch AS runtime", 1)[1].split("\nFROM ", 1)[0]
    assert re.search(r'^VOLUME \["/tmp"\]$', runtime, re.M), "the runtime stage declares /tmp a VOLUME"
    assert "chmod 1777 tmp" in dockerfile, "and the image's /tmp is world-writable (sticky)"


def test_keep_alive_outlasts_the_idle_timeout_on_every_target():
    for stack in ("dev", "prod"):
        for target in ("ecs", "eks", "swarm"):
            cfg = StackConfig.load(
                {
                    **load_stack_values(stack),
                    "csm:target": target,
                    "csm:albIdleTimeout": 120,
                    "csm:swarmHost": "ssh://d@h",
                    "csm:allowInsecureDev": stack == "dev",
                    **(
                        {
                            "csm:swarmPublishMode": "host",
                            "csm:swarmProxyImage": "r/p@sha256:" + "b" * 64,
                            "csm:swarmProxyTlsSecret": "csm/tls",
                            "csm:swarmSecretNameKey": "k" * 32,
                        }
                        if stack == "prod"
                        else {}
                    ),
                },
                stack=stack,
            )
            env = build_spec(cfg).env_dict
            assert int(env["CSM_KEEP_ALIVE_TIMEOUT"]) > 120, (stack, target, env.get("CSM_KEEP_ALIVE_TIMEOUT"))


def test_keep_alive_reaches_the_task_definition(dev):
    container = json.loads(dev.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])[0]
    env = {e["name"]: e["value"] for e in container["environment"]}
    idle = dev.one("aws:lb/loadBalancer:LoadBalancer").inputs["idleTimeout"]
    assert int(env["CSM_KEEP_ALIVE_TIMEOUT"]) > idle


GHCR = "ghcr.io/example/csm@sha256:" + "e" * 64


def test_private_registry_image_gets_repository_credentials():
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/private-auth.html
    m = run_program("dev", _stack("dev", **{"csm:imageRef": GHCR, "csm:imageRepositoryCredentials": "csm/dev/ghcr"}))
    container = json.loads(m.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])[0]
    arn = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:csm/dev/ghcr-Ab12Cd"
    assert container["image"] == GHCR and container["repositoryCredentials"] == {"credentialsParameter": arn}
    execution = json.loads(m.one("aws:iam/rolePolicy:RolePolicy", "execution").inputs["policy"])
    reads = next(s for s in execution["Statement"] if s["Sid"] == "NamedSecretsOnly")["Resource"]
    assert arn in reads, "the execution role reads the registry credentials at pull time"


def test_rendered_task_definition_has_repository_credentials_too():
    cfg = StackConfig.load(
        {**load_stack_values("dev"), "csm:imageRef": GHCR, "csm:imageRepositoryCredentials": "csm/dev/ghcr"},
        stack="dev",
    )
    files = render.render_files(cfg, build_spec(cfg))
    c = json.loads(files["task-definition.json"])["containerDefinitions"][0]
    assert c["repositoryCredentials"]["credentialsParameter"].endswith(":secret:csm/dev/ghcr")


def test_ecr_image_needs_no_repository_credentials(dev):
    container = json.loads(dev.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])[0]
    assert "repositoryCredentials" not in container
