"""The Pulumi GitHub Actions workflow: previews with PR comments, ups with prod approval,
pinned actions, least-privilege permissions, OIDC to AWS."""

from __future__ import annotations

import re

import yaml

from components.stackfiles import ROOT

TEXT = (ROOT / ".github/workflows/pulumi.yml").read_text()
WF = yaml.safe_load(TEXT)
ON = WF.get("on", WF.get(True))
JOBS = WF["jobs"]


def steps(job: str) -> list[dict]:
    return JOBS[job]["steps"]


def action(job: str, name: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").startswith(name + "@")]


def test_triggers():
    assert "pull_request" in ON and ON["push"]["branches"] == ["main"] and "workflow_call" in ON


def test_every_action_is_pinned_by_commit_sha():
    uses = re.findall(r"uses:\s*(\S+)", TEXT)
    assert uses
    unpinned = [u for u in uses if not u.startswith("./") and not re.search(r"@[0-9a-f]{40}$", u)]
    assert unpinned == []


def test_workflow_grants_nothing_by_default_and_jobs_only_what_they_need():
    assert WF["permissions"] == {}
    for name, job in JOBS.items():
        perms = job["permissions"]
        assert set(perms) <= {"contents", "id-token", "pull-requests"}, name
        assert perms["contents"] == "read", name
        assert perms.get("pull-requests") in (None, "write") and (
            perms.get("pull-requests") is None or name == "preview"
        ), name


def test_aws_through_oidc_not_static_keys():
    assert "AWS_ACCESS_KEY_ID" not in TEXT and "aws-secret-access-key" not in TEXT
    for job in JOBS:
        creds = action(job, "aws-actions/configure-aws-credentials")
        assert len(creds) == 1 and creds[0]["with"]["role-to-assume"].startswith("${{ vars."), job


def test_preview_per_stack_with_pr_comment():
    job = JOBS["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    pulumi = action("preview", "pulumi/actions")[0]["with"]
    assert (pulumi["command"], pulumi["comment-on-pr"]) == ("preview", True)


def test_up_dev_then_prod_behind_the_environment():
    assert JOBS["up-dev"]["environment"] == "dev"
    assert JOBS["up"]["needs"] == "up-dev" and "'prod'" in JOBS["up"]["environment"]
    assert [s["with"]["command"] for s in action("up", "pulumi/actions") if "with" in s] == ["up"]


def test_config_is_checked_offline_before_aws():
    for job in JOBS:
        names = [s.get("name", s.get("uses", "")) for s in steps(job)]
        check = next(i for i, n in enumerate(names) if n.startswith("Stack config"))
        aws = next(i for i, n in enumerate(names) if n.startswith("aws-actions/configure-aws-credentials"))
        assert check < aws, job


EXPRESSION_CONTEXTS = (
    "inputs.",
    "vars.",
    "secrets.",
    "github.",
    "needs.",
    "matrix.",
    "steps.",
    "env.",
    "jobs.",
    "runner.",
)


def _values(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _values(v)
    elif isinstance(node, list):
        for v in node:
            yield from _values(v)
    elif isinstance(node, str):
        yield node


def test_context_references_are_expressions():
    # Issue 13 item 2: `IMAGE_REF: inputs.image-ref` passed the literal string "inputs.image-ref" to
    # `pulumi config set`. Outside `if:` (an expression already), a context must be inside ${{ }}.
    bare = [
        v
        for job in JOBS.values()
        for step in job.get("steps", [])
        for k, val in step.items()
        if k != "if"
        for v in _values(val)
        if v.strip().startswith(EXPRESSION_CONTEXTS)
    ]
    bare += [
        v for job in JOBS.values() for v in _values(job.get("env", {})) if v.strip().startswith(EXPRESSION_CONTEXTS)
    ]
    assert bare == [], f"context references outside ${{{{ }}}}: {bare}"


def test_the_given_digest_reaches_the_stack_config():
    step = next(s for s in steps("up") if s.get("name") == "Deploy the given digest instead of building")
    assert step["env"]["IMAGE_REF"] == "${{ inputs.image-ref }}"
