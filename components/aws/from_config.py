"""What both AWS targets build the same way from the stack config: the network and the alarm
thresholds. The targets' deploy modules call these; the components themselves never read config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.aws.alarms import AlarmThresholds
from components.aws.network import NetworkArgs

if TYPE_CHECKING:
    from components.config import StackConfig


def network_args(cfg: StackConfig) -> NetworkArgs:
    n = cfg.network
    return NetworkArgs(
        vpc_id=n.vpc_id,
        public_subnet_ids=n.public_subnet_ids,
        private_subnet_ids=n.private_subnet_ids,
        cidr=n.vpc_cidr,
        az_count=n.az_count,
        nat_gateways=n.nat_gateways,
        min_azs=2 if cfg.prod else 1,
    )


def alarm_thresholds(cfg: StackConfig) -> AlarmThresholds:
    a = cfg.alarms
    return AlarmThresholds(
        error_rate_percent=a.error_rate_percent,
        p99_latency_ms=a.p99_latency_ms,
        cpu_percent=a.cpu_percent,
        memory_percent=a.memory_percent,
        emails=a.emails,
        topic_arn=a.topic_arn,
    )
