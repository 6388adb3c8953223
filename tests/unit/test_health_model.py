"""Issue 13 item 8: one health model, per layer (docs/health-model.md).

Routing may follow readiness (Cassandra reachable); replacement (an orchestrator killing the process) follows only
liveness (the process answers). So a Cassandra outage never makes any target kill healthy processes, and the service's
own reconnect brings every replica back when the database returns.

- ECS replaces every task whose target group health check fails ("The service scheduler also replaces tasks determined
  to be unhealthy after a container health check or a load balancer target group health check fails",
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html), with no switch to ignore the load
  balancer (https://github.com/aws/containers-roadmap/issues/1271); healthCheckGracePeriodSeconds only covers the first
  seconds of a task. So on ECS both checks are liveness checks.
- Kubernetes: liveness and startup probes restart; readiness only routes.
- Swarm: the container health check restarts; HAProxy's readiness check only routes.
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import yaml

from harness.pulumi_mocks import CsmMocks, install, run_program

install(CsmMocks())

from components.config import IMAGE_HEALTHCHECK, StackConfig  # noqa: E402
from components.kubernetes import render as k8s  # noqa: E402
from components.spec import build_spec  # noqa: E402
from components.stackfiles import ROOT, as_pulumi_config, load_stack_values  # noqa: E402
from components.swarm import render as swarm_render  # noqa: E402

DIGEST = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/csm@sha256:" + "a" * 64
LIVE, READY = "/health/live", "/health/ready"


def test_the_image_healthcheck_probes_liveness_only():
    # `csm healthcheck` asks /health/live, which does not depend on Cassandra: run it against a server that
    # records the path and answers 200 only there.
    from csm.cli import main

    asked: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200 if self.path == LIVE else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        code = main(["healthcheck", "--port", str(server.server_address[1])])
        server.shutdown()
    assert asked == [LIVE], f"csm healthcheck asked {asked}, not only {LIVE}"
    assert code == 0, "csm healthcheck failed although /health/live answered 200"
    assert IMAGE_HEALTHCHECK[-1] == "healthcheck"


def test_every_deployed_health_check_runs_the_images_own_command():
    # The Dockerfile's HEALTHCHECK, Compose's and the program's (IMAGE_HEALTHCHECK, asserted per target below) are one
    # command; their cadences differ on purpose (docs/health-model.md).
    dockerfile = (ROOT / "app/Dockerfile").read_text()
    healthcheck = dockerfile.split("\nHEALTHCHECK ", 1)[1].split("\n    CMD ", 1)[1].split("\n", 1)[0]
    assert tuple(json.loads(healthcheck)) == IMAGE_HEALTHCHECK, f"app/Dockerfile HEALTHCHECK runs {healthcheck}"
    compose = yaml.safe_load((ROOT / "deploy/local/compose.yaml").read_text())
    assert compose["services"]["csm"]["healthcheck"]["test"] == ["CMD", *IMAGE_HEALTHCHECK], "deploy/local/compose.yaml"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_ecs_replaces_tasks_only_on_liveness(stack):
    m = run_program(stack, as_pulumi_config(load_stack_values(stack)))
    tg = m.one("aws:lb/targetGroup:TargetGroup").inputs["healthCheck"]
    assert tg["path"] == LIVE, f"{stack}: ECS replaces tasks failing the target group check; it must not be readiness"
    container = json.loads(m.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])[0]
    assert container["healthCheck"]["command"] == ["CMD", *IMAGE_HEALTHCHECK]
    assert (
        m.one("aws:ecs/service:Service").inputs["healthCheckGracePeriodSeconds"]
        >= container["healthCheck"]["startPeriod"]
    )


def test_kubernetes_restarts_on_liveness_and_routes_on_readiness():
    cfg = StackConfig.load({**load_stack_values("prod"), "csm:target": "eks"}, stack="prod")
    objects = k8s.render_objects(
        build_spec(cfg, DIGEST), k8s.options_from_config(cfg, role_arn="arn:aws:iam::111122223333:role/x")
    )
    c = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == LIVE and c["startupProbe"]["httpGet"]["path"] == LIVE
    assert c["readinessProbe"]["httpGet"]["path"] == READY


def test_swarm_restarts_on_liveness_and_the_proxy_routes_on_readiness():
    proxy = "r/p@sha256:" + "b" * 64
    cfg = StackConfig.load(
        {
            **load_stack_values("dev"),
            "csm:target": "swarm",
            "csm:swarmHost": "ssh://d@h",
            "csm:allowInsecureDev": True,
            "csm:swarmPublishMode": "host",
            "csm:swarmEndpointMode": "dnsrr",
            "csm:swarmProxyImage": proxy,
        },
        stack="dev",
    )
    doc = swarm_render.stack_document(build_spec(cfg, DIGEST), swarm_render.swarm_options(cfg))
    assert doc["services"]["csm"]["healthcheck"]["test"] == ["CMD", *IMAGE_HEALTHCHECK]
    assert doc["services"]["proxy"]["environment"]["CSM_HEALTH_PATH"] == READY
    haproxy = (ROOT / "deploy/swarm/proxy/haproxy.cfg").read_text()
    assert "option httpchk" in haproxy and "on-marked-down shutdown-sessions" not in haproxy
