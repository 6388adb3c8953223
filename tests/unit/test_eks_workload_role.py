"""Pure parts of the EKS components: IAM documents (IRSA, Pod Identity, secrets) and the Output
substitution that keeps the applied objects equal to the rendered ones."""

from __future__ import annotations

import pytest

from components.aws.policies import secrets_policy
from components.eks.external_secrets import chart_values
from components.eks.workload_role import irsa_trust, pod_identity_trust
from components.kubernetes.app import substitute

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/ABC"
ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:csm/db-AbCdEf"
KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234"


def test_irsa_trust_strips_the_issuer_scheme():
    cond = irsa_trust("arn:aws:iam::111122223333:oidc-provider/" + ISSUER, "https://" + ISSUER, "csm", "csm")[
        "Statement"
    ][0]["Condition"]
    assert set(cond["StringEquals"]) == {f"{ISSUER}:sub", f"{ISSUER}:aud"}


def test_pod_identity_trust_without_trusted_roles_has_one_statement():
    assert len(pod_identity_trust("c", "csm", "csm")["Statement"]) == 1


def test_secrets_policy_is_empty_without_secrets():
    assert secrets_policy(secret_arns=[], kms_key_arns=[KEY], region="eu-west-1") == []


def test_kms_decrypt_only_through_secrets_manager():
    kms = secrets_policy(secret_arns=[ARN], kms_key_arns=[KEY], region="eu-west-1")[1]
    assert kms["Action"] == "kms:Decrypt" and kms["Resource"] == [KEY]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}


@pytest.mark.parametrize("part", ["", "webhook", "certController"])
def test_eso_chart_pods_drop_all_and_use_runtime_default_seccomp(part):
    values = chart_values()[part] if part else chart_values()
    assert values["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert values["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_substitute_replaces_only_exact_leaves():
    obj = {"a": ["x", {"b": "x"}], "c": "xx", "d": 1}
    assert substitute(obj, "x", "Y") == {"a": ["Y", {"b": "Y"}], "c": "xx", "d": 1}


def test_roles_chained_from_pod_identity_may_tag_the_session():
    # Issue 13 item 18: a Pod Identity session carries session tags; a role assumed from it (role chaining) must allow
    # sts:TagSession as well, or AssumeRole is denied.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html#id_session-tags_role-chaining
    trust = pod_identity_trust("c", "ns", "sa", ["arn:aws:iam::111122223333:role/eso"])
    chained = next(s for s in trust["Statement"] if s["Sid"] == "TrustedRoles")
    assert set(chained["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
