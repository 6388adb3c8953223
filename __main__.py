"""CSM Pulumi program: parse the stack config, describe the service, deploy the chosen target.

All config errors are reported at once, before any resource is planned. The target's
components come from components/targets.py (ecs now; eks and swarm plug in there).
"""
from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.config import ConfigError, StackConfig
from components.image import Image, ImageArgs, app_version, git_commit
from components.spec import build_spec
from components.targets import DeployedImage, deployer, ecr_repository_arn

try:
    cfg = StackConfig.from_pulumi()
except ConfigError as err:
    raise pulumi.RunError(str(err)) from None

deploy = deployer(cfg.target)  # fails here, still before any resource, for targets not implemented yet

opts = pulumi.ResourceOptions()
if cfg.aws_region:
    provider = aws.Provider("aws", region=cfg.aws_region, default_tags=aws.ProviderDefaultTagsArgs(
        tags={"app": cfg.name, "stack": cfg.stack, "environment": cfg.general.environment, "managed-by": "pulumi", **cfg.general.tags},
    ))
    opts = pulumi.ResourceOptions(providers={"aws": provider})

if cfg.image.ref:
    image = DeployedImage(ref=pulumi.Output.from_input(cfg.image.ref),
                          ecr_repository_arn=pulumi.Output.from_input(ecr_repository_arn(cfg.image.ref)) if ecr_repository_arn(cfg.image.ref) else None)
else:
    built = Image(f"{cfg.name}-image", ImageArgs(
        repository_name=cfg.image.repository,
        version=cfg.image.version or app_version(),
        commit=git_commit(context=cfg.image.context),
        platforms=cfg.image.platforms,
        context=cfg.image.context,
        dockerfile=cfg.image.dockerfile,
        scan=cfg.image.scan,
        scan_policy=cfg.image.scan_policy,
        kms_key_arn=cfg.image.kms_key_arn,
        keep_images=cfg.image.keep_images,
        untagged_expiry_days=cfg.image.untagged_expiry_days,
        deletion_protection=cfg.general.deletion_protection,
    ), opts=opts)
    image = DeployedImage(ref=built.ref, ecr_repository_arn=built.repository_arn)

spec = build_spec(cfg)
outputs = deploy(cfg, spec, image, opts)

pulumi.export("target", cfg.target)
pulumi.export("imageRef", image.ref)
for key, value in outputs.items():
    pulumi.export(key, value)
