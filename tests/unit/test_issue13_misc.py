"""Issue 13: the smaller findings, one test each."""

from __future__ import annotations

from components.eks.workload_role import pod_identity_trust


def test_roles_chained_from_pod_identity_may_tag_the_session():
    # Issue 13 item 18: a Pod Identity session carries session tags; a role assumed from it (role chaining) must allow
    # sts:TagSession as well, or AssumeRole is denied.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html#id_session-tags_role-chaining
    trust = pod_identity_trust("c", "ns", "sa", ["arn:aws:iam::111122223333:role/eso"])
    chained = next(s for s in trust["Statement"] if s["Sid"] == "TrustedRoles")
    assert set(chained["Action"]) == {"sts:AssumeRole", "sts:TagSession"}


def _created_cluster():
    from test_eks_target import run

    return run("create-eso-irsa")


def test_created_cluster_runs_a_node_autoscaler():
    # Issue 13 item 7: replicas + a surge pod need more nodes than eksNodeMinSize; the Cluster Autoscaler adds them
    # (up to eksNodeMaxSize), found through the node group's auto-discovery tags.
    m = _created_cluster()
    release = next(
        r
        for r in m.registered
        if r.typ == "kubernetes:helm.sh/v3:Release" and r.inputs.get("chart") == "cluster-autoscaler"
    )
    values = release.inputs["values"]
    assert values["autoDiscovery"]["clusterName"] == "csm-prod" and values["cloudProvider"] == "aws"
    assert values["image"]["tag"] == "v1.33.0"
    role_arn = values["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    role = next(r for r in m.of_type("aws:iam/role:Role") if r.outputs.get("arn") == role_arn)
    assert "system:serviceaccount:kube-system:cluster-autoscaler" in role.inputs["assumeRolePolicy"]
    import json

    policy = json.loads(
        next(r for r in m.of_type("aws:iam/rolePolicy:RolePolicy") if "autoscaler" in r.name).inputs["policy"]
    )
    resize = next(s for s in policy["Statement"] if s["Sid"] == "ResizeOwnNodeGroups")
    assert resize["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/csm-prod": "owned"}}


def test_created_cluster_has_metrics_server_for_the_hpa():
    # Issue 13 item 10 (second half): without the metrics API the HPA never scales.
    m = _created_cluster()
    assert [
        r.inputs["addonName"] for r in m.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "metrics-server"
    ] == ["metrics-server"]


def test_swarm_ecr_credential_refresh_is_supported_and_documented():
    # Issue 13 item 13: Swarm tasks pull with the credential stored by --with-registry-auth (12 h for ECR); a manager
    # with the ECR credential helper refreshes it before it expires.
    import subprocess

    from components.stackfiles import ROOT

    script = ROOT / "deploy/swarm/registry-auth-refresh"
    assert script.stat().st_mode & 0o111, "executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "docker service update --with-registry-auth" in text and "docker-credential-ecr-login" in text
    doc = (ROOT / "docs/swarm-ecr.md").read_text()
    assert "registry-auth-refresh" in doc and "credHelpers" in doc and "12 hours" in doc
