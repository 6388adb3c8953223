"""Stack and the swarm target under Pulumi mocks: one rule per test.

The deploy command's stack file is asserted to be exactly the renderer's output for the
deployed image and secret versions: the same bytes the end-to-end tests deploy."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path

import pulumi
import pytest
import yaml

from components.config import StackConfig
from components.spec import build_spec
from components.stackfiles import as_pulumi_config, load_stack_values
from components.swarm import render
from components.swarm.stack import Stack, StackArgs, endpoint_host
from harness.pulumi_mocks import CsmMocks, construct, run_program

IMAGE = "registry.example.com/csm/csm@sha256:" + "c" * 64
SECRET_VALUES = {"cassandra-password": "s3cret-cassandra-password-value", "master-key": "s3cret-master-key-value"}
SECRETS = [
    "CSM_CASSANDRA_PASSWORD=csm/dev/cassandra-password",
    "CSM_MASTER_KEY=arn:aws:secretsmanager:eu-west-1:111122223333:secret:csm/dev/master-key-AbCdEf",
]
SWARM = {
    "csm:target": "swarm",
    "csm:allowInsecureDev": True,
    "csm:swarmHost": "ssh://deploy@swarm-1.internal",
    "csm:imageRef": IMAGE,
    "csm:secrets": SECRETS,
}
TLS = {
    "csm:swarmHost": "tcp://swarm-1.internal:2376",
    "csm:swarmTlsCaCert": "CA-PEM",
    "csm:swarmTlsCert": "CERT-PEM",
    "csm:swarmTlsKey": "KEY-PEM",
}

SECRET = "docker:index/secret:Secret"
COMMAND = "command:local:Command"
PROVIDER = "pulumi:providers:docker"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


class SwarmMocks(CsmMocks):
    """CsmMocks plus Secrets Manager values (the swarm target reads them to create Docker secrets)."""

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            ref = dict(args.args)["secretId"]
            self.calls.append((args.token, dict(args.args)))
            return {
                "secretString": f"value-of-{ref}",
                "arn": f"arn:aws:secretsmanager:eu-west-1:111122223333:secret:{ref}",
                "id": ref,
                "versionId": "v1",
            }
        return super().call(args)


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine (and the mocks) see a secret value


def is_secret(value) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def plain(value):
    return value["value"] if is_secret(value) else value


@functools.cache
def stack_values(stack: str) -> dict:
    return load_stack_values(stack)


def settings(overrides=None, stack="dev"):
    return StackConfig.load({**stack_values(stack), **SWARM, **(overrides or {})}, stack=stack)


UNSET = dict(registry=None, secret_name_key=None, log_retention_days=None, deletion_protection=False)


def make_stack(overrides=None, secret_values=None, **kw):
    cfg = settings(overrides)
    spec = build_spec(cfg, IMAGE)

    def make():
        stack = Stack(
            "csm",
            StackArgs(
                options=render.swarm_options(cfg),
                spec=spec,
                image_ref=IMAGE,
                host=cfg.swarm.host,
                secret_values=secret_values or SECRET_VALUES,
                tls_ca_cert=cfg.swarm.tls_ca_cert,
                tls_cert=cfg.swarm.tls_cert,
                tls_key=cfg.swarm.tls_key,
                **{**UNSET, **kw},
            ),
        )
        return stack, {
            "stack_file": stack.stack_file,
            "names": stack.secret_names,
            "url": stack.service_url,
            "log_group": stack.log_group_name,
        }

    mocks, (_component, outs) = construct(make, mocks=SwarmMocks())
    return cfg, spec, mocks, outs


def test_docker_provider_points_at_the_swarm_host():
    _, _, mocks, _ = make_stack()
    assert mocks.one(PROVIDER).inputs["host"] == "ssh://deploy@swarm-1.internal", "provider csm-docker: host"


def test_tcp_host_gets_the_tls_material():
    _, _, mocks, _ = make_stack(TLS)
    p = mocks.one(PROVIDER).inputs
    tls = (p["caMaterial"], p["certMaterial"], p["keyMaterial"])
    assert all(map(is_secret, tls)) and tuple(map(plain, tls)) == ("CA-PEM", "CERT-PEM", "KEY-PEM"), (
        "provider csm-docker: TLS"
    )


def test_one_docker_secret_per_spec_secret():
    _, spec, mocks, _ = make_stack()
    assert sorted(r.name for r in mocks.of_type(SECRET)) == sorted(f"csm-secret-{s.name}" for s in spec.secrets)


def test_docker_secret_names_are_versioned_by_content():
    _, _, mocks, _ = make_stack()
    got = {r.name: r.inputs["name"] for r in mocks.of_type(SECRET)}
    want = {f"csm-secret-{k}": render.versioned_secret_name("csm", k, v) for k, v in SECRET_VALUES.items()}
    assert got == want, "docker secrets: names"


def test_docker_secret_data_is_the_base64_value():
    _, _, mocks, _ = make_stack()
    secret = mocks.one(SECRET, "cassandra-password")
    data = secret.inputs["data"]
    assert is_secret(data) and base64.b64decode(plain(data)).decode() == SECRET_VALUES["cassandra-password"], (
        f"{secret.name}: data"
    )


def test_secrets_outlive_docker_stack_rm():
    # `docker stack rm` deletes secrets labelled com.docker.stack.namespace=<stack>: Pulumi owns these.
    _, _, mocks, _ = make_stack()
    for secret in mocks.of_type(SECRET):
        labels = {lb["label"]: lb["value"] for lb in secret.inputs["labels"]}
        assert "com.docker.stack.namespace" not in labels and labels["csm.stack"] == "csm", f"{secret.name}: labels"


def test_a_rotated_value_is_a_new_secret_name():
    _, _, before, _ = make_stack()
    _, _, after, _ = make_stack(secret_values={**SECRET_VALUES, "cassandra-password": "rotated-password-value"})
    name = lambda m: m.one(SECRET, "cassandra-password").inputs["name"]  # noqa: E731
    assert name(before) != name(after), "csm-secret-cassandra-password: name must change with the value"


def test_missing_secret_value_is_refused_before_any_resource():
    with pytest.raises(ValueError, match="master-key"):
        make_stack(secret_values={"cassandra-password": "x"})


def test_tcp_host_without_tls_is_refused():
    cfg = settings()
    spec = build_spec(cfg, IMAGE)
    with pytest.raises(ValueError, match="tcp://"):
        Stack(
            "csm",
            StackArgs(
                options=render.swarm_options(cfg),
                spec=spec,
                image_ref=IMAGE,
                host="tcp://h:2376",
                secret_values=SECRET_VALUES,
                tls_ca_cert=None,
                tls_cert=None,
                tls_key=None,
                **UNSET,
            ),
        )


def test_deploy_runs_the_stack_deploy_script_on_create_and_update():
    _, _, mocks, _ = make_stack()
    cmd = mocks.one(COMMAND, "deploy").inputs
    assert cmd["create"] == cmd["update"] == "deploy/swarm/stack-deploy csm", "csm-deploy: create/update"


def test_deploy_scripts_are_the_repositorys_run_from_the_project_directory():
    _, _, mocks, _ = make_stack()
    cmd = mocks.one(COMMAND, "deploy").inputs
    root = Path(__file__).resolve().parents[2]
    scripts = [cmd["create"].split()[0], cmd["delete"].split()[0]]
    assert "dir" not in cmd and all(os.access(root / s, os.X_OK) for s in scripts), "csm-deploy: scripts"


def test_destroy_removes_the_stack():
    _, _, mocks, _ = make_stack()
    assert mocks.one(COMMAND, "deploy").inputs["delete"] == "deploy/swarm/stack-rm csm", "csm-deploy: delete"


def test_deployed_stack_file_is_exactly_the_renderers_output():
    cfg, spec, mocks, outs = make_stack()
    names = {k: render.versioned_secret_name("csm", k, v) for k, v in SECRET_VALUES.items()}
    expected = render.render_stack(spec.with_image(IMAGE), render.swarm_options(cfg), names)
    assert mocks.one(COMMAND, "deploy").inputs["stdin"] == expected == outs["stack_file"], "csm-deploy: stdin"


def test_deploy_reruns_when_the_files_hash_changes():
    _, _, mocks, _ = make_stack()
    cmd = mocks.one(COMMAND, "deploy").inputs
    assert cmd["triggers"] == [hashlib.sha256(cmd["stdin"].encode()).hexdigest()], "csm-deploy: triggers"


def test_deploy_reaches_the_host_from_config():
    _, _, mocks, _ = make_stack()
    assert mocks.one(COMMAND, "deploy").inputs["environment"]["DOCKER_HOST"] == "ssh://deploy@swarm-1.internal"


def test_deploy_gets_tls_material_for_tcp_hosts():
    _, _, mocks, _ = make_stack(TLS)
    env = mocks.one(COMMAND, "deploy").inputs["environment"]
    tls = tuple(plain(env)[k] for k in ("CSM_SWARM_TLS_CA", "CSM_SWARM_TLS_CERT", "CSM_SWARM_TLS_KEY"))
    assert is_secret(env) and tls == ("CA-PEM", "CERT-PEM", "KEY-PEM"), "csm-deploy: TLS environment (secret)"


def test_secret_values_never_reach_the_deploy_command():
    _, _, mocks, _ = make_stack()
    cmd = mocks.one(COMMAND, "deploy").inputs
    text = repr(cmd)
    assert not any(v in text for v in SECRET_VALUES.values()), "csm-deploy: a secret value is in its inputs"


def test_stack_file_names_the_created_secrets():
    _, _, mocks, outs = make_stack()
    declared = {s["name"] for s in yaml.safe_load(outs["stack_file"])["secrets"].values()}
    assert declared == {r.inputs["name"] for r in mocks.of_type(SECRET)}


def test_no_log_group_without_awslogs():
    _, _, mocks, _ = make_stack()
    assert mocks.of_type(LOG_GROUP) == []


def test_awslogs_gets_its_log_group_with_retention():
    _, _, mocks, outs = make_stack({"csm:swarmAwsLogs": True}, log_retention_days=14)
    group = mocks.one(LOG_GROUP).inputs
    assert (group["name"], group["retentionInDays"]) == ("/swarm/csm-dev", 14) and outs["log_group"] == "/swarm/csm-dev"


def test_service_url_is_the_published_port_on_the_host():
    _, _, _, outs = make_stack({"csm:swarmPublishedPort": 8443})
    assert outs["url"] == "http://swarm-1.internal:8443"


@pytest.mark.parametrize(
    "host,expected",
    [
        ("ssh://deploy@swarm-1.internal", "swarm-1.internal"),
        ("tcp://10.0.0.5:2376", "10.0.0.5"),
        ("unix:///var/run/docker.sock", "127.0.0.1"),
    ],
)
def test_endpoint_host(host, expected):
    assert endpoint_host(host) == expected


def test_registry_login_for_the_deploy():
    from components.swarm.stack import RegistryAuth

    _, _, mocks, _ = make_stack(
        registry=RegistryAuth(
            server="https://111122223333.dkr.ecr.eu-west-1.amazonaws.com", username="AWS", password="token"
        )
    )
    env = mocks.one(COMMAND, "deploy").inputs["environment"]
    assert is_secret(env), "csm-deploy: the environment holds the registry password: secret"
    env = plain(env)
    assert (env["CSM_REGISTRY_SERVER"], env["CSM_REGISTRY_USER"], env["CSM_REGISTRY_PASSWORD"]) == (
        "https://111122223333.dkr.ecr.eu-west-1.amazonaws.com",
        "AWS",
        "token",
    )


# ---- the whole program with target swarm


def program(overrides=None):
    values = {**stack_values("dev"), **SWARM, **(overrides or {})}
    return run_program("dev", as_pulumi_config(values), mocks=SwarmMocks())


def test_program_deploys_a_swarm_stack_and_exports_its_url():
    mocks = program()
    assert mocks.one("csm:swarm:Stack") and mocks.outputs["serviceUrl"] == "http://swarm-1.internal:8000"


def test_program_creates_no_ecs_resources_for_swarm():
    mocks = program()
    assert not [r.name for r in mocks.registered if r.typ.startswith("aws:ecs/")]


def test_program_reads_secret_values_from_secrets_manager():
    mocks = program()
    data = {r.name: base64.b64decode(plain(r.inputs["data"])).decode() for r in mocks.of_type(SECRET)}
    assert data["csm-secret-cassandra-password"] == "value-of-csm/dev/cassandra-password"


def test_program_reads_pulumi_config_secrets():
    mocks = program(
        {"csm:secretSource": "pulumi", "csm:secrets": ["CSM_MASTER_KEY=masterKey"], "csm:masterKey": "from-config"}
    )
    assert base64.b64decode(plain(mocks.one(SECRET).inputs["data"])).decode() == "from-config"


def test_program_logs_in_to_ecr_for_ecr_images():
    ecr = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/csm@sha256:" + "d" * 64
    mocks = program({"csm:imageRef": ecr})
    env = plain(mocks.one(COMMAND, "deploy").inputs["environment"])
    assert env["CSM_REGISTRY_SERVER"].endswith("dkr.ecr.eu-west-1.amazonaws.com") and env["CSM_REGISTRY_USER"] == "AWS"


def test_docker_secret_names_are_keyed_so_a_guess_cannot_be_confirmed():
    # Issue 13 item 17: the name is in the state and in `docker secret ls`; an unsalted hash of a low-entropy password
    # confirms a guess offline. With the stack's key (a Pulumi secret), the name is an HMAC only the key holder computes.
    import hashlib

    key = "k" * 40
    _, _, mocks, _ = make_stack(secret_name_key=key)
    got = {r.name: r.inputs["name"] for r in mocks.of_type(SECRET)}
    assert got == {f"csm-secret-{k}": render.versioned_secret_name("csm", k, v, key) for k, v in SECRET_VALUES.items()}
    for k, v in SECRET_VALUES.items():
        assert not got[f"csm-secret-{k}"].endswith(hashlib.sha256(v.encode()).hexdigest()[:12]), k
    assert render.versioned_secret_name("csm", "x", "v", key) != render.versioned_secret_name(
        "csm", "x", "v", "other" * 8
    )


def test_tls_proxy_gets_its_certificate_as_a_docker_secret_and_an_https_url():
    proxy = "registry.example.com/csm/swarm-proxy@sha256:" + "b" * 64
    tls = {
        "csm:swarmPublishMode": "host",
        "csm:swarmEndpointMode": "dnsrr",
        "csm:swarmProxyImage": proxy,
        "csm:swarmProxyTlsSecret": "csm/dev/proxy-tls",
    }
    _, _, mocks, outs = make_stack(tls, secret_values={**SECRET_VALUES, render.PROXY_TLS_KEY: "CERT\nKEY"})
    assert "csm-secret-proxy-tls" in [r.name for r in mocks.of_type(SECRET)]
    assert outs["url"].startswith("https://")


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
