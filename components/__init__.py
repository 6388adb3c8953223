"""The Pulumi program's components, one package per target (ecs, eks, kubernetes, swarm), the AWS
pieces both AWS targets share (aws), the image, and the config → spec path every target reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pulumi


def per_stack(name: str, stack: str | None) -> str:
    """``<name>-<stack>``: what is named once per stack (ECR repository, task family, cluster, instance label)."""
    return f"{name}-{stack}" if stack else name


def renamed(opts: pulumi.ResourceOptions | None, *old_types: str) -> pulumi.ResourceOptions:
    """``opts`` plus aliases to the type tokens a component had before: its stack keeps the resources
    (and their children, whose URNs carry the parent's type) instead of replacing them."""
    import pulumi

    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=t) for t in old_types])
    )
