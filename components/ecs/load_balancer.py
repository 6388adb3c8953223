"""Application Load Balancer: public (or internal) subnets, target group on the readiness endpoint,
HTTPS listener when a certificate is configured (HTTP then only redirects), HTTP otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import renamed


@dataclass(kw_only=True)
class LoadBalancerArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    target_port: int
    health_path: str
    health_interval: int
    health_timeout: int
    unhealthy_threshold: int
    certificate_arn: str | None
    ssl_policy: str
    internal: bool
    ingress_cidrs: Sequence[str]
    idle_timeout: int
    deregistration_delay: int
    deletion_protection: bool
    # Paths the public listener refuses (404): the service's unauthenticated operational endpoints.
    private_paths: Sequence[str] = ("/metrics", "/metrics/*", "/info", "/info/*")


class LoadBalancer(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    listener_arn: pulumi.Output[str]
    https: bool

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:ecs:LoadBalancer", name, None, renamed(opts, "csm:alb:LoadBalancer"))
        child = pulumi.ResourceOptions(parent=self)
        self.https = args.certificate_arn is not None
        sg = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=args.vpc_id, description=f"{name} load balancer", opts=child)
        ports = (80, 443) if self.https else (80,)
        for port in ports:
            for i, cidr in enumerate(args.ingress_cidrs):
                v6 = ":" in cidr
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-in-{port}-{i}",
                    security_group_id=sg.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=None if v6 else cidr,
                    cidr_ipv6=cidr if v6 else None,
                    description=f"clients on {port}",
                    opts=child,
                )
        lb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=args.internal,
            security_groups=[sg.id],
            subnets=args.subnet_ids,
            idle_timeout=args.idle_timeout,
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        tg = aws.lb.TargetGroup(
            f"{name}-tg",
            port=args.target_port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=args.deregistration_delay,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=args.health_path,
                protocol="HTTP",
                port="traffic-port",
                matcher="200",
                interval=args.health_interval,
                timeout=args.health_timeout,
                healthy_threshold=2,
                unhealthy_threshold=args.unhealthy_threshold,
            ),
            opts=child,
        )
        forward = [aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=tg.arn)]
        if self.https:
            listener = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=lb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=args.ssl_policy,
                certificate_arn=args.certificate_arn,
                default_actions=forward,
                opts=child,
            )
            aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=lb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[
                    aws.lb.ListenerDefaultActionArgs(
                        type="redirect",
                        redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                            protocol="HTTPS", port="443", status_code="HTTP_301"
                        ),
                    )
                ],
                opts=child,
            )
        else:
            listener = aws.lb.Listener(
                f"{name}-http", load_balancer_arn=lb.arn, port=80, protocol="HTTP", default_actions=forward, opts=child
            )

        # Operational endpoints stay off the public listener: /metrics and /info answer without a token. Health checks
        # reach the targets directly, not through the listener, so they are unaffected.
        aws.lb.ListenerRule(
            f"{name}-no-ops",
            listener_arn=listener.arn,
            priority=1,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=list(args.private_paths))
                )
            ],
            actions=[
                aws.lb.ListenerRuleActionArgs(
                    type="fixed-response",
                    fixed_response=aws.lb.ListenerRuleActionFixedResponseArgs(
                        content_type="application/json", status_code="404", message_body='{"detail":"Not Found"}'
                    ),
                )
            ],
            opts=child,
        )

        self.arn = lb.arn
        self.arn_suffix = lb.arn_suffix
        self.dns_name = lb.dns_name
        self.security_group_id = sg.id
        self.target_group_arn = tg.arn
        self.target_group_arn_suffix = tg.arn_suffix
        self.listener_arn = listener.arn
        self.register_outputs(
            {
                "arn": self.arn,
                "dns_name": self.dns_name,
                "security_group_id": self.security_group_id,
                "target_group_arn": self.target_group_arn,
                "listener_arn": self.listener_arn,
            }
        )
