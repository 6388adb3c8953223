"""Pulumi mocks for the CSM program's unit tests: no engine, no AWS, no network.

``CsmMocks`` records every resource registration (type, name, inputs as the engine sees them)
and answers the data-source calls the components make (AZs, caller identity, secrets, ECR
token, subnets, VPC) with fixed values.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "111122223333"
REGION = "eu-west-1"
AZS = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
DIGEST = "sha256:" + "ab" * 32
_PULUMI_LOOP = asyncio.new_event_loop()


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict
    outputs: dict


def _service(typ: str) -> str:
    return typ.split(":")[1].split("/")[0]


class CsmMocks(pulumi.runtime.Mocks):
    def __init__(self, subnet_azs: dict[str, str] | None = None):
        self.registered: list[Registered] = []
        self.calls: list[tuple[str, dict]] = []
        self.subnet_azs = subnet_azs or {}
        self.outputs: dict[str, Any] = {}  # stack outputs of run_program

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = dict(args.inputs)
        name = inputs.get("name") or f"{args.name}-1a2b3c4"
        out: dict[str, Any] = {**inputs, "name": name}
        if args.typ.startswith("aws:"):
            out.setdefault(
                "arn", f"arn:aws:{_service(args.typ)}:{REGION}:{ACCOUNT}:{args.typ.split(':')[-1].lower()}/{name}"
            )
        t = args.typ
        if t == "aws:ecr/repository:Repository":
            out.update(
                repositoryUrl=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}",
                registryId=ACCOUNT,
                arn=f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}",
            )
        elif t == "docker-build:index:Image":
            name_ = (
                inputs["tags"][0]
                if inputs.get("tags")
                else inputs["exports"][0]["raw"].split("name=", 1)[1].split(",", 1)[0]
            )
            out.update(digest=DIGEST, ref=f"{name_}@{DIGEST}")
        elif t == "docker-build:index:Index":
            out.update(ref=f"{inputs['tag']}@{DIGEST}")
        elif t == "aws:lb/loadBalancer:LoadBalancer":
            out.update(arnSuffix=f"app/{name}/0123456789abcdef", dnsName=f"{name}-123456.{REGION}.elb.amazonaws.com")
        elif t == "aws:lb/targetGroup:TargetGroup":
            out.update(arnSuffix=f"targetgroup/{name}/0123456789abcdef")
        elif t == "aws:cloudwatch/logGroup:LogGroup":
            out.update(arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}")
        elif t == "aws:iam/role:Role":
            out.update(arn=f"arn:aws:iam::{ACCOUNT}:role/{name}")
        elif t == "aws:ec2/vpc:Vpc":
            out.setdefault("cidrBlock", inputs.get("cidrBlock"))
        elif t == "aws:cloudwatch/dashboard:Dashboard":
            out.update(dashboardName=inputs.get("dashboardName", name))
        elif t == "command:local:Command":
            out.update(stdout="", stderr="")
        self.registered.append(Registered(t, args.name, inputs, out))
        return [f"{args.name}-id", out]

    def call(self, args: pulumi.runtime.MockCallArgs):
        a = dict(args.args)
        self.calls.append((args.token, a))
        t = args.token
        if t == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": AZS, "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"], "id": REGION}
        if t == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDA", "id": ACCOUNT}
        if t == "aws:secretsmanager/getSecret:getSecret":
            if a.get("arn"):
                arn = a["arn"] if a["arn"][-7] == "-" else a["arn"] + "-Ab12Cd"
            else:
                arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{a['name']}-Ab12Cd"
            return {"arn": arn, "name": arn.split(":secret:")[1][:-7], "id": arn}
        if t == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "userName": "AWS",
                "password": "not-a-real-token",
                "authorizationToken": "x",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
                "expiresAt": "",
                "id": REGION,
            }
        if t == "aws:ec2/getSubnet:getSubnet":
            return {
                "id": a["id"],
                "availabilityZone": self.subnet_azs.get(a["id"], AZS[0]),
                "vpcId": "vpc-0123456789abcdef0",
            }
        if t == "aws:ec2/getVpc:getVpc":
            return {"id": a.get("id"), "cidrBlock": "10.20.0.0/16"}
        return {}

    # -- queries used by the tests

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.registered if r.typ == typ]

    def one(self, typ: str, name_contains: str = "") -> Registered:
        found = [r for r in self.of_type(typ) if r.name == name_contains] or [
            r for r in self.of_type(typ) if name_contains in r.name
        ]
        assert len(found) == 1, f"expected one {typ} named *{name_contains}*, got {[r.name for r in found]}"
        return found[0]


def use_pulumi_loop() -> None:
    """Pulumi keeps futures (the root stack's among them) on the thread's current event loop;
    asyncio.run() in other tests unsets it, so every Pulumi test runs on this one loop."""
    asyncio.set_event_loop(_PULUMI_LOOP)


def stack_config(stack: str = "dev", overrides: dict[str, Any] | None = None):
    """A committed stack file's config, parsed by the model: the one source of the components' defaults."""
    from components.config import StackConfig
    from components.stackfiles import load_stack_values

    return StackConfig.load({**load_stack_values(stack), **(overrides or {})}, stack=stack)


def install(mocks: CsmMocks, stack: str = "dev", config: dict[str, str] | None = None) -> CsmMocks:
    use_pulumi_loop()
    pulumi.runtime.set_mocks(mocks, project="csm", stack=stack, preview=False)
    # As `pulumi config set --secret` would: the keys the model keeps secret arrive as secrets.
    from components.config import SECRET_KEYS

    config = dict(config or {})
    runtime_config.set_all_config(config, [k for k in config if k.rpartition(":")[2] in SECRET_KEYS])
    return mocks


def run_program(stack: str, config: dict[str, str], mocks: CsmMocks | None = None) -> CsmMocks:
    """Run __main__.py under mocks with ``config`` (Pulumi-encoded strings); returns the recorder."""
    mocks = install(mocks or CsmMocks(), stack=stack, config=config)
    exported: dict[str, Any] = {}
    real_export = pulumi.export

    @pulumi.runtime.test
    def program():
        pulumi.export = lambda key, value: exported.__setitem__(key, value)  # type: ignore[assignment]
        try:
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = real_export  # type: ignore[assignment]
        return pulumi.Output.all(**exported).apply(mocks.outputs.update)

    program()
    return mocks


def policy_documents(mocks: CsmMocks) -> dict[str, dict]:
    return {r.name: json.loads(r.inputs["policy"]) for r in mocks.of_type("aws:iam/rolePolicy:RolePolicy")}


def construct(make, stack: str = "dev", mocks: CsmMocks | None = None) -> tuple[CsmMocks, Any]:
    """Create components with ``make()`` under mocks and wait for every registration.

    Returns the recorder and what ``make`` returned. Outputs of it are resolved in the same run
    when ``make`` returns ``(component, {name: Output})``: the second item comes back resolved."""
    mocks = install(mocks or CsmMocks(), stack=stack)
    made: list[Any] = []

    @pulumi.runtime.test
    def run():
        result = make()
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict):
            component, outs = result
            resolved: dict[str, Any] = {}
            made.append((component, resolved))
            return pulumi.Output.all(**outs).apply(resolved.update)
        made.append(result)

    run()
    return mocks, made[0]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def assert_well_formed(name: str, doc: dict) -> None:
    assert doc.get("Version") == "2012-10-17", f"{name}: Version"
    assert isinstance(doc.get("Statement"), list) and doc["Statement"], f"{name}: Statement must be a non-empty list"
    for st in doc["Statement"]:
        assert st.get("Effect") in ("Allow", "Deny"), f"{name}: Effect {st}"
        assert st.get("Action") and all(isinstance(a, str) and (a == "*" or ":" in a) for a in as_list(st["Action"])), (
            f"{name}: Action {st}"
        )
        assert "Resource" in st or "Principal" in st, f"{name}: no Resource/Principal in {st}"


def assert_no_star_on_star(name: str, doc: dict) -> None:
    for st in doc["Statement"]:
        if st["Effect"] != "Allow" or "Resource" not in st:
            continue
        actions, resources = as_list(st["Action"]), as_list(st["Resource"])
        wild_action = any(a == "*" or a.endswith(":*") for a in actions)
        assert not (wild_action and "*" in resources), f"{name}: statement {st.get('Sid')} allows * on *"
        assert "*" not in actions, f"{name}: statement {st.get('Sid')} allows every action"
