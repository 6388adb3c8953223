"""Image pipeline: build (multi-platform, registry cache) -> scan (Trivy + gate) -> push -> digest.

Two ECR repositories:
  * ``<name>-staging`` (mutable, short-lived): the build pushes here, ``:<tag>`` plus the
    BuildKit registry cache ``:buildcache``. Nothing deploys from it.
  * ``<name>`` (the release repository: immutable tags, scan on push, KMS, lifecycle policy):
    only an image that passed the scan is copied here (``docker buildx imagetools create``
    through pulumi-docker-build's ``Index``), tagged ``<version>-<git sha>``, never ``latest``.

The scan runs Trivy per platform on the staged digest and hands each JSON report to the
vulnerability gate, ``python -m security.gate --report <file> --policy <prod|dev>
--allowlist security/allowlist.yaml``; a non-zero exit fails the Command, so the release
copy (which depends on it) never happens and ``pulumi up`` fails. Everything downstream
uses ``ref`` = ``<release repository>@sha256:<digest>``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess  # nosec B404 # only git, with fixed argv lists and no shell
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_docker_build as docker_build

ROOT = Path(__file__).resolve().parent.parent
CACHE_TAG = "buildcache"


def app_version(root: Path = ROOT) -> str:
    return tomllib.loads((root / "app" / "pyproject.toml").read_text())["project"]["version"]


def git_commit(root: Path = ROOT, context: str = "app") -> str:
    """Short commit of HEAD; with uncommitted changes in the build context, ``<sha>-dirty-<hash>``
    where the hash covers those changes, so immutable tags never collide across edits.

    ``GITHUB_SHA`` wins in CI. Local only: git never talks to a remote here.
    """
    sha = os.environ.get("GITHUB_SHA", "")
    if sha:
        return sha[:12]

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True, text=True).stdout  # nosec B603 B607 # fixed git argv, no shell

    try:
        sha = git("rev-parse", "--short=12", "HEAD").strip()
        changed = git("diff", "HEAD", "--", context)
        untracked = git("ls-files", "--others", "--exclude-standard", "--", context).split()
    except (OSError, subprocess.CalledProcessError):
        return "nogit"
    if not changed and not untracked:
        return sha
    digest = hashlib.sha256(changed.encode())
    for path in sorted(untracked):
        digest.update(path.encode() + b"\0" + (root / path).read_bytes())
    return f"{sha}-dirty-{digest.hexdigest()[:8]}"


def lifecycle_policy(keep_images: int, untagged_expiry_days: int) -> str:
    return json.dumps({
        "rules": [
            {
                "rulePriority": 1,
                "description": f"expire untagged images after {untagged_expiry_days} days",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": untagged_expiry_days},
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"keep the {keep_images} most recent tagged images",
                "selection": {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan", "countNumber": keep_images},
                "action": {"type": "expire"},
            },
        ]
    })


def staging_lifecycle_policy() -> str:
    return json.dumps({
        "rules": [{
            "rulePriority": 1,
            "description": "staged builds and cache are disposable",
            "selection": {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
            "action": {"type": "expire"},
        }]
    })


def scan_script(platforms: Sequence[str], policy: str, python: str, allowlist: str, report_dir: str) -> str:
    """Shell run by the scan Command; IMAGE (staged repo@digest) comes from the environment."""
    lines = ["set -eu", f"mkdir -p {shlex.quote(report_dir)}"]
    for platform in platforms:
        arch = platform.split("/", 1)[1]
        report = f"{report_dir}/trivy-{arch}.json"
        lines.append(
            f"trivy image --quiet --scanners vuln --platform {shlex.quote(platform)} --format json "
            f"--output {shlex.quote(report)} \"$IMAGE\""
        )
        lines.append(
            f"{shlex.quote(python)} -m security.gate --report {shlex.quote(report)} --policy {shlex.quote(policy)} "
            f"--allowlist {shlex.quote(allowlist)}"
        )
    return "\n".join(lines) + "\n"


@dataclass
class ImageArgs:
    repository_name: pulumi.Input[str]
    version: str
    commit: str
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64")
    context: str = "app"
    dockerfile: str = "app/Dockerfile"
    target: str = "production"  # app/Dockerfile's final stage (debug is the other)
    scan: bool = True
    scan_policy: str = "prod"
    kms_key_arn: Optional[pulumi.Input[str]] = None
    keep_images: int = 30
    untagged_expiry_days: int = 7
    deletion_protection: bool = False
    python: str = sys.executable
    allowlist: str = "security/allowlist.yaml"
    report_dir: str = "build/scan"
    project_root: str = str(ROOT)
    build_secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)


class Image(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    staging_repository_url: pulumi.Output[str]
    tag: str
    digest: pulumi.Output[str]
    ref: pulumi.Output[str]

    def __init__(self, name: str, args: ImageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("csm:image:Image", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=args.deletion_protection)
        encryption = [aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=args.kms_key_arn)]

        repo = aws.ecr.Repository(
            f"{name}-repo",
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=encryption,
            force_delete=not args.deletion_protection,
            opts=keep,
        )
        aws.ecr.LifecyclePolicy(f"{name}-lifecycle", repository=repo.name, policy=lifecycle_policy(args.keep_images, args.untagged_expiry_days), opts=child)

        staging = aws.ecr.Repository(
            f"{name}-staging",
            name=pulumi.Output.concat(args.repository_name, "-staging"),
            # Staged builds are immutable too; only the registry cache tag is rewritten by every build.
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[
                aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(filter=CACHE_TAG, filter_type="WILDCARD"),
            ],
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=encryption,
            force_delete=True,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(f"{name}-staging-lifecycle", repository=staging.name, policy=staging_lifecycle_policy(), opts=child)

        token = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id, opts=pulumi.InvokeOutputOptions(parent=self))
        registry = docker_build.RegistryArgs(
            address=repo.repository_url.apply(lambda url: url.split("/", 1)[0]),
            username=token.user_name,
            password=token.password,
        )
        self.tag = f"{args.version}-{args.commit}"
        cache_ref = staging.repository_url.apply(lambda url: f"{url}:{CACHE_TAG}")

        build = docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location=str(Path(args.project_root) / args.context)),
            dockerfile=docker_build.DockerfileArgs(location=str(Path(args.project_root) / args.dockerfile)),
            platforms=list(args.platforms),
            tags=[staging.repository_url.apply(lambda url: f"{url}:{self.tag}")],
            push=True,
            build_on_preview=False,
            registries=[registry],
            cache_from=[docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=cache_ref))],
            cache_to=[docker_build.CacheToArgs(registry=docker_build.CacheToRegistryArgs(
                ref=cache_ref, mode=docker_build.CacheMode.MAX, image_manifest=True, oci_media_types=True))],
            target=args.target,
            build_args={"VERSION": args.version, "COMMIT": args.commit},
            secrets=args.build_secrets or None,
            opts=child,
        )
        staged_ref = pulumi.Output.all(staging.repository_url, build.digest).apply(lambda a: f"{a[0]}@{a[1]}")

        gate: list[pulumi.Resource] = []
        if args.scan:
            gate.append(command.local.Command(
                f"{name}-scan",
                create=scan_script(args.platforms, args.scan_policy, args.python, args.allowlist, args.report_dir),
                interpreter=["/bin/sh", "-c"],
                dir=args.project_root,
                environment={"IMAGE": staged_ref},
                triggers=[build.digest],
                opts=child,
            ))

        release = docker_build.Index(
            f"{name}-release",
            sources=[staged_ref],
            tag=repo.repository_url.apply(lambda url: f"{url}:{self.tag}"),
            push=True,
            registry=registry,
            opts=pulumi.ResourceOptions(parent=self, depends_on=gate),
        )

        self.repository_url = repo.repository_url
        self.repository_arn = repo.arn
        self.staging_repository_url = staging.repository_url
        self.digest = release.ref.apply(lambda ref: ref.split("@", 1)[1])
        self.ref = pulumi.Output.all(repo.repository_url, self.digest).apply(lambda a: f"{a[0]}@{a[1]}")
        self.register_outputs({
            "repository_url": self.repository_url,
            "repository_arn": self.repository_arn,
            "staging_repository_url": self.staging_repository_url,
            "digest": self.digest,
            "ref": self.ref,
        })
