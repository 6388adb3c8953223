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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_docker_build as docker_build

if TYPE_CHECKING:
    from components.config import StackConfig

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


def read_build_secrets(files: dict[str, str]) -> dict[str, pulumi.Output[str]]:
    """BuildKit secrets (id -> file on the build host), read as Pulumi secrets."""
    out = {}
    for sid, path in files.items():
        try:
            out[sid] = pulumi.Output.secret(Path(path).read_text())
        except OSError as exc:
            raise pulumi.RunError(
                f"csm:imageBuildSecretFiles: cannot read {path} for build secret {sid!r}: {exc.strerror}"
            ) from None
    return out


def commit_time(root: Path = ROOT) -> int | None:
    """Unix time of HEAD's commit (SOURCE_DATE_EPOCH for reproducible builds); None without git."""
    try:
        out = subprocess.run(  # nosec B603 B607 # fixed git argv, no shell
            ["git", "log", "-1", "--format=%ct"], cwd=root, check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return int(out.strip()) if out.strip().isdigit() else None


def lifecycle_policy(unpulled_expiry_days: int, untagged_expiry_days: int) -> str:
    """Release repository: untagged leftovers expire after ``untagged_expiry_days``; a tagged release only once nothing pulled it
    for ``unpulled_expiry_days`` (``sinceImagePulled``). Never by count: "keep the newest N" deletes what a running task
    definition or a rollback target still names. Fargate and Kubernetes nodes pull on every task/pod start, and ECR records the
    pull time at least daily (https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html)."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"expire untagged images after {untagged_expiry_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_expiry_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"expire tagged images nothing pulled for {unpulled_expiry_days} days",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["*"],
                        "countType": "sinceImagePulled",
                        "countUnit": "days",
                        "countNumber": unpulled_expiry_days,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )


def staging_lifecycle_policy() -> str:
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "staged builds and cache are disposable",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": 14,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
    )


def scan_script(platforms: Sequence[str], policy: str, python: str, allowlist: str, report_dir: str) -> str:
    """Shell run by the scan Command; IMAGE (staged repo@digest) comes from the environment."""
    lines = ["set -eu", f"mkdir -p {shlex.quote(report_dir)}"]
    for platform in platforms:
        arch = platform.split("/", 1)[1]
        report = f"{report_dir}/trivy-{arch}.json"
        lines.append(
            f"trivy image --quiet --scanners vuln --platform {shlex.quote(platform)} --format json "
            f'--output {shlex.quote(report)} "$IMAGE"'
        )
        lines.append(
            f"{shlex.quote(python)} -m security.gate --report {shlex.quote(report)} --policy {shlex.quote(policy)} "
            f"--allowlist {shlex.quote(allowlist)}"
        )
    return "\n".join(lines) + "\n"


@dataclass(kw_only=True)
class ImageArgs:
    """What the stack config sets has no default here: the config model owns those (image_args)."""

    repository_name: pulumi.Input[str]
    version: str
    commit: str
    platforms: Sequence[str]
    context: str
    dockerfile: str
    scan: bool
    scan_policy: str
    kms_key_arn: pulumi.Input[str] | None
    unpulled_expiry_days: int
    untagged_expiry_days: int
    deletion_protection: bool
    build_secrets: Mapping[str, pulumi.Input[str]]
    source_date_epoch: int | None  # the commit's time: reproducible timestamps (SOURCE_DATE_EPOCH)
    # Deploy this image (repository@sha256:...) instead of building: the repositories are still declared, so switching a
    # stack that already built to csm:imageRef neither deletes the protected release repository nor the staging one.
    deploy_ref: str | None
    build_args: dict[str, str]
    build_network: str
    build_exec: bool  # the local docker CLI and its default builder, not docker-build's embedded client
    compression: str  # gzip, or zstd: every layer recompressed at level 19, with OCI media types
    # An existing registry (host[:port][/path]) instead of ECR; nothing is created there.
    registry: str | None
    registry_username: pulumi.Input[str] | None
    registry_password: pulumi.Input[str] | None
    target: str = "production"  # app/Dockerfile's final stage (debug is the other)
    python: str = sys.executable
    allowlist: str = "security/allowlist.yaml"
    report_dir: str = "build/scan"
    project_root: str = str(ROOT)


def image_args(
    cfg: StackConfig,
    *,
    build_secrets: Mapping[str, pulumi.Input[str]] | None = None,
    registry_password: pulumi.Input[str] | None = None,
    source_date_epoch: int | None = None,
) -> ImageArgs:
    """The stack config's image section as the component's args; the program adds what it reads at run time."""
    i = cfg.image
    return ImageArgs(
        repository_name=cfg.image_repository,
        version=i.version or app_version(),
        commit=git_commit(context=i.context),
        platforms=i.platforms,
        context=i.context,
        dockerfile=i.dockerfile,
        scan=i.scan,
        scan_policy=i.scan_policy,
        kms_key_arn=i.kms_key_arn,
        unpulled_expiry_days=i.unpulled_expiry_days,
        untagged_expiry_days=i.untagged_expiry_days,
        deletion_protection=cfg.general.deletion_protection,
        build_secrets=build_secrets or {},
        source_date_epoch=source_date_epoch,
        deploy_ref=i.ref,
        build_args=i.build_arg_map,
        build_network=i.build_network,
        build_exec=i.build_exec,
        compression=i.compression,
        registry=i.registry,
        registry_username=i.registry_username,
        registry_password=registry_password,
    )


class Image(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str] | None = None  # ECR only
    staging_repository_url: pulumi.Output[str]
    tag: str
    digest: pulumi.Output[str]
    ref: pulumi.Output[str]
    release_tag: pulumi.Output[str]

    def __init__(self, name: str, args: ImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("csm:image:Image", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.tag = f"{args.version}-{args.commit}"
        if args.registry is not None:
            self._registry_pipeline(name, args)
            return
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
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repo.name,
            policy=lifecycle_policy(args.unpulled_expiry_days, args.untagged_expiry_days),
            opts=child,
        )

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
        aws.ecr.LifecyclePolicy(
            f"{name}-staging-lifecycle", repository=staging.name, policy=staging_lifecycle_policy(), opts=child
        )

        self.repository_url = repo.repository_url
        self.repository_arn = repo.arn
        self.staging_repository_url = staging.repository_url
        if args.deploy_ref is not None:
            self.ref = pulumi.Output.from_input(args.deploy_ref)
            self.digest = self.ref.apply(lambda ref: ref.split("@", 1)[1])
            self.release_tag = pulumi.Output.from_input("")
            self._register()
            return

        token = aws.ecr.get_authorization_token_output(
            registry_id=repo.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        registry = docker_build.RegistryArgs(
            address=repo.repository_url.apply(lambda url: url.split("/", 1)[0]),
            username=token.user_name,
            password=token.password,
        )
        cache_ref = staging.repository_url.apply(lambda url: f"{url}:{CACHE_TAG}")

        build = docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location=str(Path(args.project_root) / args.context)),
            dockerfile=docker_build.DockerfileArgs(location=str(Path(args.project_root) / args.dockerfile)),
            platforms=[docker_build.Platform(p) for p in args.platforms],
            # Pushed to staging by digest only, with timestamps rewritten to SOURCE_DATE_EPOCH: a rebuild of the same
            # <version>-<sha> never meets ImageTagAlreadyExists in the immutable staging repository.
            exports=[
                docker_build.ExportArgs(
                    raw=staging.repository_url.apply(
                        lambda url: (
                            f"type=image,name={url},push-by-digest=true,name-canonical=true,push=true,rewrite-timestamp=true"
                            + _compression(args.compression)
                        )
                    )
                )
            ],
            push=False,
            build_on_preview=False,
            registries=[registry],
            cache_from=[docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=cache_ref))],
            cache_to=[
                docker_build.CacheToArgs(
                    registry=docker_build.CacheToRegistryArgs(
                        ref=cache_ref, mode=docker_build.CacheMode.MAX, image_manifest=True, oci_media_types=True
                    )
                )
            ],
            opts=child,
            **_build_settings(args),
        )
        staged_ref = pulumi.Output.all(staging.repository_url, build.digest).apply(lambda a: f"{a[0]}@{a[1]}")

        gate = self._scan(name, args, staged_ref, build.digest)

        # The release tag carries the digest's first 12 hex digits: a rebuild that differs (new base packages, ...) gets
        # its own immutable tag instead of failing on ImageTagAlreadyExists.
        self.release_tag = build.digest.apply(lambda d: f"{self.tag}-{d.split(':', 1)[1][:12]}")
        release = docker_build.Index(
            f"{name}-release",
            sources=[staged_ref],
            tag=pulumi.Output.all(repo.repository_url, self.release_tag).apply(lambda a: f"{a[0]}:{a[1]}"),
            push=True,
            registry=registry,
            opts=pulumi.ResourceOptions(parent=self, depends_on=gate),
        )

        self.digest = release.ref.apply(lambda ref: ref.split("@", 1)[1])
        self.ref = pulumi.Output.all(repo.repository_url, self.digest).apply(lambda a: f"{a[0]}@{a[1]}")
        self._register()

    def _register(self) -> None:
        self.register_outputs(
            {
                "repository_url": self.repository_url,
                "repository_arn": self.repository_arn,
                "staging_repository_url": self.staging_repository_url,
                "digest": self.digest,
                "ref": self.ref,
            }
        )

    def _scan(
        self, name: str, args: ImageArgs, staged_ref: pulumi.Output[str], digest: pulumi.Output[str]
    ) -> list[pulumi.Resource]:
        if not args.scan:
            return []
        return [
            command.local.Command(
                f"{name}-scan",
                create=scan_script(args.platforms, args.scan_policy, args.python, args.allowlist, args.report_dir),
                interpreter=["/bin/sh", "-c"],
                dir=args.project_root,
                environment={"IMAGE": staged_ref},
                triggers=[digest],
                opts=pulumi.ResourceOptions(parent=self),
            )
        ]

    def _registry_pipeline(self, name: str, args: ImageArgs) -> None:
        """Build, (scan,) push to an existing registry. Scanned: staged as <repo>-staging:<tag> and
        copied to <repo>:<tag> once the gate passed, as with ECR. Not scanned: pushed straight to
        <repo>:<tag>, with a warning in every preview and update."""
        child = pulumi.ResourceOptions(parent=self)
        if args.registry is None:
            raise ValueError(f"{name}: the registry pipeline needs a registry")
        repo_url = pulumi.Output.concat(args.registry, "/", args.repository_name)
        self.repository_url = repo_url
        self.release_tag = pulumi.Output.from_input(self.tag)
        if args.deploy_ref is not None:
            self.staging_repository_url = repo_url
            self.ref = pulumi.Output.from_input(args.deploy_ref)
            self.digest = self.ref.apply(lambda ref: ref.split("@", 1)[1])
            self.register_outputs({"repository_url": self.repository_url, "digest": self.digest, "ref": self.ref})
            return
        address = (args.registry or "").split("/", 1)[0]
        logins = (
            [
                docker_build.RegistryArgs(
                    address=address, username=args.registry_username, password=args.registry_password
                )
            ]
            if args.registry_username is not None
            else []
        )
        staging_url = pulumi.Output.concat(repo_url, "-staging") if args.scan else repo_url
        build = docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location=str(Path(args.project_root) / args.context)),
            dockerfile=docker_build.DockerfileArgs(location=str(Path(args.project_root) / args.dockerfile)),
            platforms=[docker_build.Platform(p) for p in args.platforms],
            tags=[pulumi.Output.concat(staging_url, ":", self.tag)],
            **(
                {"push": True}
                if args.compression == "gzip"
                else {
                    "push": False,
                    "exports": [docker_build.ExportArgs(raw=f"type=registry{_compression(args.compression)}")],
                }
            ),
            build_on_preview=False,
            registries=logins or None,
            opts=child,
            **_build_settings(args),
        )
        staged_ref = pulumi.Output.all(staging_url, build.digest).apply(lambda a: f"{a[0]}@{a[1]}")
        if args.scan:
            release = docker_build.Index(
                f"{name}-release",
                sources=[staged_ref],
                tag=pulumi.Output.concat(repo_url, ":", self.tag),
                push=True,
                registry=logins[0] if logins else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=self._scan(name, args, staged_ref, build.digest)),
            )
            self.digest = release.ref.apply(lambda ref: ref.split("@", 1)[1])
        else:
            pulumi.log.warn(
                f"{name}: csm:imageScan is false: {self.tag} is pushed without a vulnerability scan", resource=self
            )
            self.digest = build.digest
        self.staging_repository_url = staging_url
        self.ref = pulumi.Output.all(repo_url, self.digest).apply(lambda a: f"{a[0]}@{a[1]}")
        self.register_outputs({"repository_url": self.repository_url, "digest": self.digest, "ref": self.ref})


def _compression(compression: str) -> str:
    """The image exporter's options for ``compression`` (none for gzip, BuildKit's default)."""
    if compression == "gzip":
        return ""
    # force-compression: the base image's layers, pulled gzip, are recompressed too
    return f",compression={compression},compression-level=19,force-compression=true,oci-mediatypes=true"


def _build_settings(args: ImageArgs) -> dict:
    """The docker-build Image arguments both pipelines share."""
    settings: dict = {
        "target": args.target,
        "build_args": {
            **args.build_args,
            "VERSION": args.version,
            "COMMIT": args.commit,
            **({"SOURCE_DATE_EPOCH": str(args.source_date_epoch)} if args.source_date_epoch is not None else {}),
        },
        "secrets": args.build_secrets or None,
    }
    if args.build_network == "host":
        settings["network"] = docker_build.NetworkMode.HOST
    if args.build_exec:
        settings["exec_"] = True
        settings["builder"] = docker_build.BuilderConfigArgs(name="default")
    return settings
