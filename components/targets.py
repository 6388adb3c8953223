"""The target table: ``csm:target`` -> the module that deploys it and the function that renders
its files offline (``make render``).

Each target's deploy module exposes

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

# target: (deploy module, "render module:function"); EKS renders the same manifests as any cluster
TARGETS = {
    "ecs": ("components.ecs.target", "components.ecs.render:render_files"),
    "eks": ("components.eks.target", "components.kubernetes.render:render_files"),
    "kubernetes": ("components.kubernetes.target", "components.kubernetes.render:render_kubernetes_files"),
    "swarm": ("components.swarm.target", "components.swarm.render:render_files"),
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
# ServiceSpec (+ stack config) -> {relative file name: text}: what the target deploys, without an engine
FileRenderer = Callable[["StackConfig", "ServiceSpec"], dict[str, str]]


def deployer(target: str) -> Deployer:
    deploy: Deployer = importlib.import_module(TARGETS[target][0]).deploy
    return deploy


def file_renderer(target: str) -> FileRenderer:
    module, function = TARGETS[target][1].split(":")
    render: FileRenderer = getattr(importlib.import_module(module), function)
    return render


def file_renderers() -> dict[str, FileRenderer]:
    return {target: file_renderer(target) for target in TARGETS}
