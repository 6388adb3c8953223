"""CSM Pulumi program: parse the stack config, describe the service, deploy the chosen target.

All config errors are reported at once, before any resource is planned. The target's
components come from components/targets.py.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.config import ConfigError, StackConfig
from components.image import Image, commit_time, image_args, read_build_secrets
from components.spec import build_spec
from components.targets import DeployedImage, deployer, ecr_repository_arn

try:
    cfg = StackConfig.from_pulumi()
except ConfigError as err:
    raise pulumi.RunError(str(err)) from None

deploy = deployer(cfg.target)

opts = pulumi.ResourceOptions()
if cfg.aws_region:
    provider = aws.Provider(
        "aws",
        region=cfg.aws_region,
        default_tags=aws.ProviderDefaultTagsArgs(
            tags={
                "app": cfg.name,
                "stack": cfg.stack,
                "environment": cfg.general.environment,
                "managed-by": "pulumi",
                **cfg.general.tags,
            },
        ),
    )
    opts = pulumi.ResourceOptions(providers={"aws": provider})

# The Image component (and with it the ECR repositories) is always declared: with csm:imageRef it deploys that digest and
# builds nothing, so switching a stack that already built to imageRef neither deletes its protected release repository
# (which would fail `pulumi up`) nor its staging repository.
built = Image(
    f"{cfg.name}-image",
    image_args(
        cfg,
        build_secrets=read_build_secrets(cfg.image.build_secret_map) if cfg.image.ref is None else {},
        registry_password=pulumi.Config("csm").get_secret("imageRegistryPassword")
        if cfg.image.registry_password
        else None,
        source_date_epoch=commit_time(),
    ),
    opts=opts,
)
if cfg.image.ref:
    arn = ecr_repository_arn(cfg.image.ref)
    image = DeployedImage(
        ref=pulumi.Output.from_input(cfg.image.ref), ecr_repository_arn=pulumi.Output.from_input(arn) if arn else None
    )
else:
    image = DeployedImage(ref=built.ref, ecr_repository_arn=built.repository_arn)

spec = build_spec(cfg)
outputs = deploy(cfg, spec, image, opts)

pulumi.export("target", cfg.target)
pulumi.export("imageRef", image.ref)
for key, value in outputs.items():
    pulumi.export(key, value)
