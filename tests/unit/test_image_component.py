"""Image component under mocks: ECR repositories, multi-platform build with registry cache,
scan between build and release, release by digest."""

from __future__ import annotations

import json

import pulumi
import pytest

from harness.pulumi_mocks import ACCOUNT, DIGEST, REGION, CsmMocks, construct, install, stack_config

mocks = install(CsmMocks())

from components.image import Image, ImageArgs, image_args, lifecycle_policy, scan_script  # noqa: E402

BASE = vars(image_args(stack_config("dev")))
ARGS = {
    **BASE,
    **dict(repository_name="csm", version="1.0.0", commit="0123abcd4567", deletion_protection=True, scan_policy="prod"),
}


def make(**overrides):
    image = Image("csm-image", ImageArgs(**{**ARGS, **overrides}))
    return image, {"ref": image.ref, "digest": image.digest, "url": image.repository_url}


@pytest.fixture(scope="module")
def built():
    return construct(make)


def repo(built, name):
    return built[0].one("aws:ecr/repository:Repository", name).inputs


def test_release_repository_has_immutable_tags(built):
    r = repo(built, "csm-image-repo")
    assert r["imageTagMutability"] == "IMMUTABLE", "csm-image-repo: tags must be immutable"


def test_staging_repository_is_immutable_except_the_cache_tag(built):
    r = repo(built, "csm-image-staging")
    assert r["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert r["imageTagMutabilityExclusionFilters"] == [{"filter": "buildcache", "filterType": "WILDCARD"}]


def test_git_commit_marks_and_hashes_uncommitted_changes(tmp_path, monkeypatch):
    import subprocess

    from components.image import git_commit

    monkeypatch.delenv("GITHUB_SHA", raising=False)

    def run(*a):
        return subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    run("init", "-q")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "f").write_text("1")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    clean = git_commit(tmp_path)
    assert len(clean) == 12 and "dirty" not in clean
    (tmp_path / "app" / "f").write_text("2")
    first = git_commit(tmp_path)
    (tmp_path / "app" / "f").write_text("3")
    assert first.startswith(clean + "-dirty-") and git_commit(tmp_path) != first


def test_release_repository_scans_on_push(built):
    assert repo(built, "csm-image-repo")["imageScanningConfiguration"] == {"scanOnPush": True}


def test_release_repository_is_kms_encrypted(built):
    assert repo(built, "csm-image-repo")["encryptionConfigurations"][0]["encryptionType"] == "KMS"


def test_release_repository_is_not_force_deleted_when_protected(built):
    assert repo(built, "csm-image-repo")["forceDelete"] is False


def test_release_repository_has_a_lifecycle_policy(built):
    policy = json.loads(built[0].one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "csm-image-lifecycle").inputs["policy"])
    statuses = {r["selection"]["tagStatus"] for r in policy["rules"]}
    assert statuses == {"untagged", "tagged"}, f"csm-image-lifecycle: {policy}"


def test_lifecycle_policy_counts():
    rules = json.loads(lifecycle_policy(90, 7))["rules"]
    assert [r["selection"]["countNumber"] for r in rules] == [7, 90]


def test_lifecycle_never_expires_a_release_by_count():
    # Issue 13 item 11: "keep the newest N" can expire a digest a running task definition or a rollback target still
    # names; a release expires only after nothing pulled it for N days (sinceImagePulled,
    # https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html).
    rules = json.loads(lifecycle_policy(90, 7))["rules"]
    tagged = [r for r in rules if r["selection"]["tagStatus"] != "untagged"]
    assert all(r["selection"]["countType"] == "sinceImagePulled" for r in tagged), tagged
    assert not [r for r in rules if r["selection"]["countType"] == "imageCountMoreThan"]


def build(built):
    return built[0].one("docker-build:index:Image", "csm-image-build").inputs


def test_build_is_multi_platform(built):
    assert sorted(build(built)["platforms"]) == ["linux/amd64", "linux/arm64"]


def test_build_uses_an_ecr_registry_cache(built):
    b = build(built)
    staging = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/csm-staging:buildcache"
    assert b["cacheFrom"] == [{"registry": {"ref": staging}}]
    to = b["cacheTo"][0]["registry"]
    assert (to["ref"], to["mode"], to["imageManifest"], to["ociMediaTypes"]) == (staging, "max", True, True)


def test_build_pushes_only_to_staging_by_digest(built):
    # Issue 13 item 12: no tag in the immutable staging repository, so a rebuild of the same <version>-<sha> (a new
    # digest: BuildKit stamps the build time) cannot fail with ImageTagAlreadyExists there.
    b = build(built)
    assert not b.get("tags") and b.get("push") is False
    assert b["exports"] == [
        {
            "raw": f"type=image,name={ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/csm-staging,push-by-digest=true,"
            "name-canonical=true,push=true,rewrite-timestamp=true"
        }
    ]


def test_build_timestamps_come_from_the_commit():
    m, _ = construct(lambda: make(source_date_epoch=1700000000))
    assert m.one("docker-build:index:Image").inputs["buildArgs"]["SOURCE_DATE_EPOCH"] == "1700000000"


def test_release_tag_carries_the_digest_so_a_rebuild_never_collides(built):
    # A rebuild that differs (new base packages ...) is a new digest, hence a new immutable release tag.
    assert built[0].one("docker-build:index:Index").inputs["tag"].endswith(f"/csm:1.0.0-0123abcd4567-{DIGEST[7:19]}")


def test_no_tag_is_latest(built):
    tags = [*build(built).get("tags", []), built[0].one("docker-build:index:Index").inputs["tag"]]
    assert not [t for t in tags if t.endswith(":latest")], tags


def test_release_tag_is_version_and_commit(built):
    assert "/csm:1.0.0-0123abcd4567-" in built[0].one("docker-build:index:Index").inputs["tag"]


def test_build_passes_version_and_commit_and_builds_the_production_stage(built):
    b = build(built)
    assert b["buildArgs"] == {"VERSION": "1.0.0", "COMMIT": "0123abcd4567"} and b["target"] == "production"


def test_build_authenticates_to_ecr_with_a_token(built):
    reg = build(built)["registries"][0]
    assert reg["address"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com" and reg["username"] == "AWS"


def scan(built):
    return built[0].one("command:local:Command", "csm-image-scan").inputs


def test_scan_runs_trivy_and_the_gate_per_platform(built):
    script = scan(built)["create"]
    for arch in ("amd64", "arm64"):
        assert f"--platform linux/{arch}" in script
        assert f"-m security.gate --report build/scan/trivy-{arch}.json --policy prod" in script


def test_scan_targets_the_staged_digest(built):
    s = scan(built)
    assert s["environment"]["IMAGE"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/csm-staging@{DIGEST}"
    assert s["triggers"] == [DIGEST], "csm-image-scan must re-run for every new digest"


def test_scan_script_fails_fast():
    assert scan_script(["linux/arm64"], "dev", "python", "a.yaml", "out").startswith("set -eu\n")


def test_release_copies_the_staged_digest(built):
    assert built[0].one("docker-build:index:Index").inputs["sources"] == [
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/csm-staging@{DIGEST}"
    ]


def test_outputs_are_by_digest(built):
    _, (_image, out) = built
    assert out["ref"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/csm@{DIGEST}"
    assert out["digest"] == DIGEST


class FailingScan(CsmMocks):
    def new_resource(self, args):
        if args.typ == "command:local:Command":
            raise RuntimeError("security.gate: blocked (CRITICAL CVE-2099-0001)")
        return super().new_resource(args)


def test_a_failed_scan_releases_nothing():
    failing = FailingScan()
    with pytest.raises(Exception, match="blocked"):
        construct(lambda: Image("csm-image", ImageArgs(**ARGS)), mocks=failing)
    assert failing.of_type("docker-build:index:Index") == [], "the release copy must wait for the scan"


def test_scan_can_be_switched_off_for_dev():
    recorded, _ = construct(lambda: make(scan=False))
    assert recorded.of_type("command:local:Command") == []


@pulumi.runtime.test
def test_ref_output_names_the_release_repository():
    install(mocks)
    image = Image("csm-image-x", ImageArgs(**{**ARGS, "repository_name": "csm-x"}))
    return pulumi.Output.all(image.ref).apply(
        lambda v: (
            None
            if v[0].startswith(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/csm-x@sha256:")
            else pytest.fail(f"csm-image-x ref {v[0]}")
        )
    )


ZSTD = ",compression=zstd,compression-level=19,force-compression=true,oci-mediatypes=true"


def test_zstd_recompresses_every_layer_of_the_staged_ecr_push():
    m, _ = construct(lambda: make(compression="zstd"))
    (export,) = m.one("docker-build:index:Image").inputs["exports"]
    assert export["raw"].startswith("type=image,") and export["raw"].endswith(ZSTD), (
        f"csm-image-build: a zstd stack's ECR export must recompress every layer at level 19: {export}"
    )


def test_zstd_to_an_existing_registry_is_a_registry_export_of_the_same_tag():
    m, _ = construct(lambda: make(compression="zstd", registry="127.0.0.1:5000", scan=False))
    b = m.one("docker-build:index:Image").inputs
    assert b.get("push") is False and b["exports"] == [{"raw": f"type=registry{ZSTD}"}], f"csm-image-build: {b}"
    assert b["tags"] == ["127.0.0.1:5000/csm:1.0.0-0123abcd4567"], "csm-image-build: the export pushes the tag"


def test_gzip_to_an_existing_registry_keeps_the_plain_push():
    # the default: a stack that never set csm:imageCompression sees no diff
    m, _ = construct(lambda: make(registry="127.0.0.1:5000", scan=False))
    b = m.one("docker-build:index:Image").inputs
    assert b.get("push") is True and not b.get("exports"), f"csm-image-build: {b}"
