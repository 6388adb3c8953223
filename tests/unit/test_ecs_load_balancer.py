"""Load balancer component: target group on /health/ready, HTTPS with redirect when a certificate is configured."""

from __future__ import annotations

import pulumi
import pytest

from harness.pulumi_mocks import CsmMocks, construct, install, stack_config

mocks = install(CsmMocks())

from components.ecs.load_balancer import LoadBalancer, LoadBalancerArgs  # noqa: E402
from components.spec import build_spec  # noqa: E402

CERT = "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-4000-8000-000000000000"
CONFIG = stack_config()
SPEC = build_spec(CONFIG)
BASE = dict(
    vpc_id="vpc-1",
    subnet_ids=["subnet-a", "subnet-b"],
    target_port=8000,
    health_path="/health/ready",
    health_interval=SPEC.health.interval,
    health_timeout=SPEC.health.timeout,
    unhealthy_threshold=SPEC.health.retries,
    ssl_policy=CONFIG.ingress.ssl_policy,
    internal=False,
    ingress_cidrs=CONFIG.network.ingress_cidrs,
    idle_timeout=CONFIG.ingress.idle_timeout,
    deregistration_delay=SPEC.drain_seconds,
)


@pytest.fixture(scope="module")
def https():
    return construct(
        lambda: LoadBalancer("lb", LoadBalancerArgs(**BASE, certificate_arn=CERT, deletion_protection=True))
    )[0]


@pytest.fixture(scope="module")
def http():
    return construct(
        lambda: LoadBalancer("lb", LoadBalancerArgs(**BASE, certificate_arn=None, deletion_protection=False))
    )[0]


def test_alb_goes_in_the_given_public_subnets(https):
    lb = https.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert (
        lb["subnets"] == ["subnet-a", "subnet-b"]
        and lb["internal"] is False
        and lb["loadBalancerType"] == "application"
    )


def test_alb_drops_invalid_headers(https):
    assert https.one("aws:lb/loadBalancer:LoadBalancer").inputs["dropInvalidHeaderFields"] is True


def test_alb_deletion_protection_follows_config(https, http):
    assert https.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    assert http.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is False


def test_target_group_checks_readiness(https):
    hc = https.one("aws:lb/targetGroup:TargetGroup").inputs["healthCheck"]
    assert (hc["path"], hc["matcher"], hc["protocol"]) == ("/health/ready", "200", "HTTP"), f"lb-tg: {hc}"


def test_target_group_targets_task_ips(https):
    tg = https.one("aws:lb/targetGroup:TargetGroup").inputs
    assert (tg["targetType"], tg["port"]) == ("ip", 8000)


def test_https_listener_when_a_certificate_is_configured(https):
    listener = https.one("aws:lb/listener:Listener", "lb-https").inputs
    assert (listener["port"], listener["protocol"], listener["certificateArn"]) == (443, "HTTPS", CERT)
    assert listener["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")


def test_http_redirects_to_https(https):
    action = https.one("aws:lb/listener:Listener", "lb-http").inputs["defaultActions"][0]
    assert action["type"] == "redirect" and action["redirect"] == {
        "protocol": "HTTPS",
        "port": "443",
        "statusCode": "HTTP_301",
    }


def test_without_a_certificate_http_forwards(http):
    listeners = http.of_type("aws:lb/listener:Listener")
    assert [(lis.inputs["port"], lis.inputs["defaultActions"][0]["type"]) for lis in listeners] == [(80, "forward")]


def test_ingress_only_on_listener_ports(https, http):
    assert sorted(
        r.inputs["fromPort"] for r in https.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    ) == [80, 443]
    assert [
        r.inputs["fromPort"] for r in http.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    ] == [80]


@pulumi.runtime.test
def test_dns_name_output():
    install(mocks)
    lb = LoadBalancer("lb2", LoadBalancerArgs(**BASE, certificate_arn=None, deletion_protection=False))
    return pulumi.Output.all(lb.dns_name, lb.target_group_arn).apply(
        lambda v: None if v[0].endswith(".elb.amazonaws.com") and v[1] else pytest.fail(f"lb2 outputs {v}")
    )
