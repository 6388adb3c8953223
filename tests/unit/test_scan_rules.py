"""The scan's own logic, without the scanners: Compose rules, suppression reasons, the gate."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from policy import csm_policies
from security import compose_rules
from security.scanners import bandit, hadolint, report
from security.scanners.common import Finding, ToolReport

DIGEST = "sha256:" + "ab" * 32


def good_service(**overrides) -> dict:
    svc = {
        "image": "127.0.0.1:5000/csm:dev",
        "user": "10001:10001",
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": "512m",
        "ports": ["127.0.0.1:8000:8000"],
        "environment": {"CSM_CASSANDRA_PASSWORD_FILE": "/run/secrets/cassandra"},
        "healthcheck": {"test": ["CMD", "csm", "healthcheck"]},
    }
    svc.update(overrides)
    return {k: v for k, v in svc.items() if v is not None}


@pytest.fixture
def failures(tmp_path):
    """Writes one service to a Compose file and returns rule -> suppression reason for each failing rule."""

    def check(svc: dict, swarm: bool = False, local: bool = True, comment: str = "") -> dict[str, str | None]:
        text = yaml.safe_dump({"services": {"app": svc}}, sort_keys=False)
        if comment:
            text = text.replace("  app:\n", f"  app:\n    {comment}\n", 1)
        path = tmp_path / "compose.yaml"
        path.write_text(text)
        return {
            r.rule: r.suppressed_reason
            for r in compose_rules.check_file(path, "compose.yaml", swarm, local)
            if not r.ok
        }

    return check


def test_compliant_local_service_passes_every_rule(failures):
    assert failures(good_service()) == {}


def test_compliant_swarm_service_passes_every_rule(failures):
    svc = good_service(
        image=f"127.0.0.1:5000/csm@{DIGEST}",
        mem_limit=None,
        security_opt=None,
        ports=None,
        deploy={"resources": {"limits": {"memory": "512M"}}},
    )
    assert failures(svc, swarm=True, local=False) == {}


@pytest.mark.parametrize(
    "overrides, rule",
    [
        ({"privileged": True}, "CSM_C01"),
        ({"read_only": None}, "CSM_C02"),
        ({"read_only": False}, "CSM_C02"),
        ({"user": None}, "CSM_C03"),
        ({"user": "root"}, "CSM_C03"),
        ({"user": "0:0"}, "CSM_C03"),
        ({"cap_drop": ["NET_RAW"]}, "CSM_C04"),
        ({"security_opt": None}, "CSM_C05"),
        ({"network_mode": "host"}, "CSM_C06"),
        ({"pid": "host"}, "CSM_C06"),
        ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}, "CSM_C07"),
        ({"volumes": [{"type": "bind", "source": "/etc", "target": "/host-etc"}]}, "CSM_C07"),
        ({"healthcheck": None}, "CSM_C08"),
        ({"healthcheck": {"disable": True}}, "CSM_C08"),
        ({"healthcheck": {"test": ["NONE"]}}, "CSM_C08"),
        ({"environment": ["CASSANDRA_PASSWORD=cassandra"]}, "CSM_C09"),
        ({"environment": {"CSM_API_TOKEN": "x"}}, "CSM_C09"),
        ({"mem_limit": None}, "CSM_C10"),
        ({"ports": ["8000:8000"]}, "CSM_C11"),
        ({"ports": ["9042"]}, "CSM_C11"),
        ({"ports": [{"target": 8000, "published": 8000}]}, "CSM_C11"),
    ],
)
def test_each_compose_rule_fails_on_its_violation(failures, overrides, rule):
    assert failures(good_service(**overrides)) == {rule: None}


def test_swarm_stack_rules(failures):
    svc = good_service(security_opt=None, ports=["8100:8000"], mem_limit="512m")
    # no-new-privileges and loopback ports are not asked of stack files; memory must be under deploy:
    assert failures(svc, swarm=True, local=False) == {"CSM_C10": None, "CSM_C12": None}


def test_one_shot_job_needs_no_healthcheck(failures):
    assert failures(good_service(healthcheck=None, restart="no")) == {}


def test_reasoned_skip_comment_suppresses_only_its_rules(failures):
    svc = good_service(read_only=None, user=None)
    found = failures(svc, comment="# csm-scan:skip=CSM_C02 Cassandra rewrites its config at start-up")
    assert found == {"CSM_C02": "Cassandra rewrites its config at start-up", "CSM_C03": None}


def test_skip_comment_without_reason_is_reported_as_such(failures):
    found = failures(good_service(read_only=None), comment="# csm-scan:skip=CSM_C02")
    assert found == {"CSM_C02": ""}


def test_compose_file_without_services_is_an_error(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text("version: '3'\n")
    with pytest.raises(compose_rules.ComposeError, match="no services"):
        list(compose_rules.check_file(path, "compose.yaml", False, True))


@pytest.mark.parametrize(
    "name",
    [
        "CSM_CASSANDRA_PASSWORD",
        "API_TOKEN",
        "CSM_CA_PRIVATE_KEY",
        "CSM_CASSANDRA_KEYSPACE",
        "CSM_CASSANDRA_PASSWORD_FILE",
        "CSM_CA_SECRET_ARN",
        "DB_PASSWD",
        "TOKENIZER",
    ],
)
def test_secret_name_rule_is_the_same_as_the_policy_packs(name):
    assert compose_rules.secret_looking(name) == csm_policies.secret_looking(name)


# ------------------------------------------------------------------ suppression reasons

DOCKERFILE = textwrap.dedent("""\
    FROM base
    # Versions come from the pinned snapshot mirror.
    # hadolint ignore=DL3008,DL3015
    RUN apt-get install -y curl
    RUN true
    # hadolint ignore=DL3008
    RUN apt-get install -y wget
    """).splitlines()


def test_hadolint_reason_is_the_comment_above_the_pragma():
    assert hadolint.hadolint_reason(DOCKERFILE, 4, "DL3015") == "Versions come from the pinned snapshot mirror."
    assert hadolint.hadolint_reason(DOCKERFILE, 4, "DL3059") is None  # not named in the pragma
    assert hadolint.hadolint_reason(DOCKERFILE, 7, "DL3008") is None  # pragma with no reason above it


@pytest.mark.parametrize(
    "line, test_id, reason",
    [
        ("subprocess.run(argv)  # nosec B603 # argv list from a constant", "B603", "argv list from a constant"),
        ("subprocess.run(argv)  # nosec B603 B607 -- fixed binary on PATH", "B607", "fixed binary on PATH"),
        ("subprocess.run(argv)  # nosec", "B603", None),
        ("subprocess.run(argv)  # nosec B603", "B603", None),
        ("subprocess.run(argv)  # nosec B404 # reason for another test", "B603", None),
    ],
)
def test_bandit_reason_needs_the_test_id_and_words(line, test_id, reason):
    assert bandit.bandit_reason(line, test_id) == reason


def test_gate_passes_only_with_zero_unsuppressed_findings():
    reasoned = Finding("bandit", "B603", "a.py", 3, "subprocess", suppressed_reason="fixed argv, no shell")
    unreasoned = Finding("bandit", "B602", "a.py", 4, "shell=True [nosec without a reason]", unreasoned=True)
    found = Finding("hadolint", "DL3008", "Dockerfile", 2, "pin versions")
    assert report.gate([ToolReport("bandit", "x", findings=[reasoned])]).passed
    one = report.gate([ToolReport("bandit", "x", findings=[reasoned, unreasoned]), ToolReport("hadolint", "y")])
    assert (one.passed, one.unsuppressed, one.suppressed, one.unreasoned, one.tools) == (False, 1, 1, 1, 2)
    two = report.gate([ToolReport("bandit", "x", findings=[unreasoned]), ToolReport("hadolint", "y", findings=[found])])
    assert not two.passed and two.line().startswith("gate: FAILED: 2 unsuppressed findings (1 of them")


def test_override_file_is_checked_as_merged_onto_its_base(tmp_path):
    """An override names its base (x-csm-base): a service it extends or adds to inherits the base's
    settings, and a setting it weakens is still caught."""
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump({"services": {"db": good_service()}}))
    override = {
        "x-csm-base": "compose.yaml",
        "services": {
            "db": {"environment": {"EXTRA": "1"}},
            "db2": {"extends": {"file": "compose.yaml", "service": "db"}, "environment": {"EXTRA": "2"}},
            "db3": {"extends": {"file": "compose.yaml", "service": "db"}, "privileged": True},
        },
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(override))
    failing = {(r.service, r.rule) for r in compose_rules.check_file(path, "cluster.yaml", False, True) if not r.ok}
    assert failing == {("db3", "CSM_C01")}
