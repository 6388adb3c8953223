"""Network: an existing VPC and subnets, or a new VPC across N AZs (public + private subnets, NAT)."""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import renamed


def subnet_cidrs(vpc_cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """Public subnets from the bottom of the VPC range, private ones from the middle."""
    net = ipaddress.IPv4Network(vpc_cidr)
    blocks = list(net.subnets(new_prefix=min(net.prefixlen + 4, 28)))
    half = len(blocks) // 2
    return [str(b) for b in blocks[:az_count]], [str(b) for b in blocks[half : half + az_count]]


def require_distinct_azs(azs: Sequence[str], minimum: int, what: str) -> list[str]:
    if len(set(azs)) < minimum:
        raise ValueError(
            f"{what} span {len(set(azs))} availability zone(s) ({', '.join(sorted(set(azs)))}); at least {minimum} are required"
        )
    return list(azs)


@dataclass(kw_only=True)
class NetworkArgs:
    vpc_id: str | None  # None: create the VPC
    public_subnet_ids: Sequence[str]
    private_subnet_ids: Sequence[str]
    cidr: str
    az_count: int
    nat_gateways: int
    min_azs: int  # existing subnets: fail the deployment if the tasks' subnets span fewer AZs


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    availability_zones: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:aws:Network", name, None, renamed(opts, "csm:network:Network"))
        invoke = pulumi.InvokeOutputOptions(parent=self)
        if args.vpc_id is None:
            self._create(name, args, invoke)
        else:
            vpc = aws.ec2.get_vpc_output(id=args.vpc_id, opts=invoke)
            azs = [aws.ec2.get_subnet_output(id=sid, opts=invoke).availability_zone for sid in args.private_subnet_ids]
            self.vpc_id = pulumi.Output.from_input(args.vpc_id)
            self.vpc_cidr = vpc.cidr_block
            self.public_subnet_ids = pulumi.Output.from_input(list(args.public_subnet_ids))
            self.availability_zones = pulumi.Output.all(*azs).apply(
                lambda zs: require_distinct_azs(zs, args.min_azs, "privateSubnetIds")
            )
            # Tasks only go to the subnets once the AZ spread is confirmed.
            self.private_subnet_ids = self.availability_zones.apply(lambda _: list(args.private_subnet_ids))
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr": self.vpc_cidr,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "availability_zones": self.availability_zones,
            }
        )

    def _create(self, name: str, args: NetworkArgs, invoke: pulumi.InvokeOutputOptions) -> None:
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones_output(state="available", opts=invoke).names
        public_cidrs, private_cidrs = subnet_cidrs(args.cidr, args.az_count)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, opts=child
        )  # no rules: nothing uses it by accident
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=child,
        )
        public, private, nats = [], [], []
        for i in range(args.az_count):
            az = zones.apply(operator.itemgetter(i))
            sn = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[i],
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{i}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}", subnet_id=sn.id, route_table_id=public_rt.id, opts=child
            )
            public.append(sn)
        for i in range(args.nat_gateways):
            eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", opts=child)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    subnet_id=public[i].id,
                    allocation_id=eip.id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        for i in range(args.az_count):
            az = zones.apply(operator.itemgetter(i))
            sn = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[i],
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{i}", "kubernetes.io/role/internal-elb": "1"},
                opts=child,
            )
            rt = aws.ec2.RouteTable(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nats[i % len(nats)].id)],
                opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=sn.id, route_table_id=rt.id, opts=child)
            private.append(sn)
        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.availability_zones = pulumi.Output.all(*[s.availability_zone for s in private])
