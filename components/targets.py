"""Target dispatch: ``csm:target`` -> the module that deploys it.

Each target module exposes

    def deploy(cfg: StackConfig, spec: ServiceSpec, image: DeployedImage,
               opts: pulumi.ResourceOptions) -> dict[str, pulumi.Input]:
        ...                      # instantiate the target's components
        return {"serviceUrl": ..., "logGroup": ..., "dashboard": ...}   # stack outputs

``__main__.py`` calls ``deployer(cfg.target)`` and exports what ``deploy`` returns (plus the
image reference). A target's module is imported only when a stack picks it, so that an ECS stack
never loads pulumi-eks or pulumi-kubernetes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi

if TYPE_CHECKING:
    from components.config import StackConfig
    from components.spec import ServiceSpec

TARGET_MODULES = {
    "ecs": "components.ecs_target",
    "eks": "components.eks_target",
    "kubernetes": "components.kubernetes_target",
    "swarm": "components.swarm_target",
}
ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^@:]+)@sha256:[0-9a-f]{64}$")


@dataclass
class DeployedImage:
    ref: pulumi.Output[str]  # repository@sha256:<digest>
    ecr_repository_arn: pulumi.Output[str] | None = None  # pull permission scope; None for non-ECR images


def ecr_repository_arn(ref: str) -> str | None:
    match = ECR_IMAGE.match(ref)
    if not match:
        return None
    account, region, repo = match.groups()
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repo}"


Deployer = Callable[["StackConfig", "ServiceSpec", DeployedImage, pulumi.ResourceOptions], dict]


def deployer(target: str) -> Deployer:
    deploy: Deployer = importlib.import_module(TARGET_MODULES[target]).deploy
    return deploy
