"""The ECS Service component built from a committed stack file, for the tests of the component and
of the AWS constraints it must meet. Import after ``harness.pulumi_mocks.install``."""

from __future__ import annotations

from components.config import StackConfig
from components.ecs.service import Service, ServiceArgs
from components.ecs.target import deployment
from components.spec import build_spec
from components.stackfiles import load_stack_values
from harness.pulumi_mocks import ACCOUNT

IMAGE = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/csm@sha256:" + "c" * 64


def config(stack: str = "prod") -> StackConfig:
    return StackConfig.load(load_stack_values(stack), stack=stack)


def spec(stack: str = "prod"):
    return build_spec(config(stack))


def make(stack: str = "prod", **overrides) -> Service:
    s = spec(stack)
    arns = {x.ref: f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:{x.ref}-Ab12Cd" for x in s.secrets}
    args = dict(
        spec=s,
        image_ref=IMAGE,
        region="eu-west-1",
        vpc_id="vpc-1",
        subnet_ids=["subnet-p1", "subnet-p2"],
        alb_security_group_id="sg-alb",
        target_group_arn="arn:tg",
        execution_role_arn="arn:aws:iam::1:role/exec",
        task_role_arn="arn:aws:iam::1:role/task",
        log_group_name="/ecs/csm-prod",
        secret_arns=arns,
        deployment=deployment(config(stack)),
    )
    return Service("svc", ServiceArgs(**{**args, **overrides}))
