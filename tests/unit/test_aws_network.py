"""Network component: new VPC across >= 2 AZs with NAT, or existing subnets checked for AZ spread."""

from __future__ import annotations

import dataclasses

import pytest

from harness.pulumi_mocks import AZS, CsmMocks, construct, install, stack_config

install(CsmMocks())

from components.aws.from_config import network_args  # noqa: E402
from components.aws.network import Network, subnet_cidrs  # noqa: E402

NET = network_args(stack_config())  # the model's defaults: a new VPC


def net_args(**changes):
    return dataclasses.replace(NET, **changes)


@pytest.fixture(scope="module")
def created():
    return construct(
        lambda: (
            lambda n: (n, {"private": n.private_subnet_ids, "public": n.public_subnet_ids, "azs": n.availability_zones})
        )(Network("net", net_args(cidr="10.40.0.0/16", az_count=3, nat_gateways=2)))
    )


def subnets(mocks, kind):
    return [r for r in mocks.of_type("aws:ec2/subnet:Subnet") if f"-{kind}-" in r.name]


def test_one_public_and_one_private_subnet_per_az(created):
    mocks = created[0]
    for kind in ("public", "private"):
        azs = [s.inputs["availabilityZone"] for s in subnets(mocks, kind)]
        assert sorted(azs) == AZS, f"{kind} subnets: {azs}"


def test_no_subnet_assigns_public_ips(created):
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in created[0].of_type("aws:ec2/subnet:Subnet"))


def test_private_subnets_route_through_nat(created):
    private_rts = [r for r in created[0].of_type("aws:ec2/routeTable:RouteTable") if "-private-" in r.name]
    assert len(private_rts) == 3
    for rt in private_rts:
        assert rt.inputs["routes"][0].get("natGatewayId"), f"{rt.name}: default route must use a NAT gateway"
        assert not rt.inputs["routes"][0].get("gatewayId"), (
            f"{rt.name}: private subnets must not route to the internet gateway"
        )


def test_public_subnets_route_through_the_internet_gateway(created):
    rt = created[0].one("aws:ec2/routeTable:RouteTable", "net-public")
    assert rt.inputs["routes"][0]["gatewayId"] == "net-igw-id"


def test_nat_gateway_count_follows_config(created):
    assert len(created[0].of_type("aws:ec2/natGateway:NatGateway")) == 2


def test_default_security_group_is_emptied(created):
    sg = created[0].one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not sg.inputs.get("ingress") and not sg.inputs.get("egress")


def test_outputs_list_the_private_subnets(created):
    _, (_net, out) = created
    assert out["private"] == ["net-private-0-id", "net-private-1-id", "net-private-2-id"]
    assert len(set(out["azs"])) == 3


def test_subnet_cidrs_do_not_overlap():
    public, private = subnet_cidrs("10.40.0.0/16", 3)
    assert public == ["10.40.0.0/20", "10.40.16.0/20", "10.40.32.0/20"] and private[0] == "10.40.128.0/20"


def test_existing_subnets_pass_through_after_the_az_check():
    mocks = CsmMocks(subnet_azs={"subnet-0000000c": "eu-west-1a", "subnet-0000000d": "eu-west-1b"})
    _, (_net, out) = construct(
        lambda: (lambda n: (n, {"private": n.private_subnet_ids, "vpc": n.vpc_id}))(
            Network(
                "net",
                net_args(
                    vpc_id="vpc-0123456789abcdef0",
                    public_subnet_ids=["subnet-0000000a", "subnet-0000000b"],
                    private_subnet_ids=["subnet-0000000c", "subnet-0000000d"],
                    min_azs=2,
                ),
            )
        ),
        mocks=mocks,
    )
    assert out == {"private": ["subnet-0000000c", "subnet-0000000d"], "vpc": "vpc-0123456789abcdef0"}
    assert mocks.of_type("aws:ec2/vpc:Vpc") == [], "an existing VPC must not be created"


def test_existing_subnets_in_one_az_fail_the_deployment():
    mocks = CsmMocks(subnet_azs={"subnet-0000000c": "eu-west-1a", "subnet-0000000d": "eu-west-1a"})
    with pytest.raises(Exception, match="1 availability zone"):
        construct(
            lambda: (lambda n: (n, {"private": n.private_subnet_ids}))(
                Network(
                    "net",
                    net_args(
                        vpc_id="vpc-0123456789abcdef0",
                        public_subnet_ids=["subnet-0000000a", "subnet-0000000b"],
                        private_subnet_ids=["subnet-0000000c", "subnet-0000000d"],
                        min_azs=2,
                    ),
                )
            ),
            mocks=mocks,
        )
