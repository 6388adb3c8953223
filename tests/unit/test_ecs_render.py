"""ECS renderer: the container definitions are valid RegisterTaskDefinition input (botocore's
own model, strict: unknown keys rejected) and carry every security and health rule."""

from __future__ import annotations

import dataclasses
import json

import botocore.session
import pytest
from botocore.validate import ParamValidator

from components.config import StackConfig
from components.ecs.render import container_definitions, environment, render_files, task_definition
from components.spec import build_spec
from components.stackfiles import load_stack_values
from components.targets import file_renderers

ECS = botocore.session.get_session().get_service_model("ecs")
REGISTER = ECS.operation_model("RegisterTaskDefinition").input_shape
DIGEST = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/csm@sha256:" + "a" * 64


def spec_for(stack: str):
    cfg = StackConfig.load(load_stack_values(stack), stack=stack)
    return cfg, build_spec(cfg, DIGEST)


def taskdef(stack: str) -> dict:
    cfg, spec = spec_for(stack)
    return json.loads(render_files(cfg, spec)["task-definition.json"])


def validate(params: dict) -> str:
    report = ParamValidator().validate(params, REGISTER)
    return report.generate_report() if report.has_errors() else ""


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rendered_task_definition_validates_against_botocore(stack):
    errors = validate(taskdef(stack))
    assert errors == "", f"{stack}: {errors}"


def test_validator_rejects_unknown_keys():
    params = taskdef("dev")
    params["containerDefinitions"][0]["readOnlyRootFilesystem"] = True  # wrong case: not an ECS key
    assert "Unknown parameter" in validate(params)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_container_definitions_file_is_the_task_definitions_containers(stack):
    cfg, spec = spec_for(stack)
    files = render_files(cfg, spec)
    assert (
        json.loads(files["container-definitions.json"])
        == json.loads(files["task-definition.json"])["containerDefinitions"]
    )


def container(stack: str = "prod") -> dict:
    return taskdef(stack)["containerDefinitions"][0]


def test_image_by_digest():
    assert container()["image"] == DIGEST


def test_spec_refuses_an_image_by_tag():
    _, spec = spec_for("dev")
    with pytest.raises(ValueError, match="by digest"):
        spec.with_image("csm:1.0.0")


def test_runs_as_uid_65532():
    assert container()["user"] == "65532:65532"


def test_read_only_root_filesystem():
    assert container()["readonlyRootFilesystem"] is True


def test_drops_all_capabilities_and_adds_none():
    caps = container()["linuxParameters"]["capabilities"]
    assert caps == {"drop": ["ALL"], "add": []}


def test_not_privileged():
    assert container()["privileged"] is False


def test_tmp_is_a_writable_task_volume():
    td = taskdef("prod")
    mount = td["containerDefinitions"][0]["mountPoints"]
    assert mount == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    assert td["volumes"] == [{"name": "tmp"}]


def test_health_check_is_the_images_healthcheck_command_in_exec_form():
    hc = container()["healthCheck"]
    assert hc["command"] == ["CMD", "/opt/venv/bin/python", "-m", "csm", "healthcheck"]
    assert (hc["interval"], hc["timeout"], hc["retries"], hc["startPeriod"]) == (15, 5, 3, 30)


def test_secrets_come_from_value_from_never_plain_environment():
    c = container()
    env_names = {e["name"] for e in c["environment"]}
    secret_names = {s["name"] for s in c["secrets"]}
    assert secret_names == {"CSM_MASTER_KEY", "CSM_API_TOKENS"}  # Keyspaces: SigV4 with the task role
    assert not env_names & secret_names
    assert all(s["valueFrom"].startswith("arn:aws:secretsmanager:") for s in c["secrets"])


def test_secret_arn_is_used_as_given():
    c = container("dev")
    arns = {s["name"]: s["valueFrom"] for s in c["secrets"]}
    assert arns["CSM_MASTER_KEY"] == "arn:aws:secretsmanager:eu-west-1:111122223333:secret:csm/dev/master-key-AbCdEf"


def test_secret_names_need_a_resolved_arn():
    _, spec = spec_for("prod")
    with pytest.raises(ValueError, match="no ARN for secret"):
        container_definitions(spec, log_group="/ecs/x", region="eu-west-1", secret_arns={})


def test_awslogs_to_own_group():
    log = container()["logConfiguration"]
    assert log["logDriver"] == "awslogs"
    assert log["options"]["awslogs-group"] == "/ecs/csm-prod"
    assert log["options"]["awslogs-region"] == "eu-west-1"


def test_port_mapping_matches_service_port():
    assert container()["portMappings"][0]["containerPort"] == 8000


def test_runtime_platform_from_config():
    td = taskdef("prod")
    assert td["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}


def test_x86_runtime_platform():
    values = {**load_stack_values("dev"), "csm:serviceArchitecture": "x86_64"}
    spec = build_spec(StackConfig.load(values, "dev"), DIGEST)
    td = task_definition(
        spec,
        family="f",
        log_group="g",
        region="eu-west-1",
        execution_role_arn="e",
        task_role_arn="t",
        secret_arns={s.ref: "arn:aws:secretsmanager:eu-west-1:111122223333:secret:x" for s in spec.secrets},
    )
    assert td["runtimePlatform"]["cpuArchitecture"] == "X86_64"


def test_fargate_task_sizes_are_strings_from_config():
    td = taskdef("prod")
    assert (td["cpu"], td["memory"], td["networkMode"], td["requiresCompatibilities"]) == (
        "1024",
        "2048",
        "awsvpc",
        ["FARGATE"],
    )


def test_keyspaces_endpoint_in_environment():
    env = {e["name"]: e["value"] for e in container("prod")["environment"]}
    assert env["CSM_CASSANDRA_CONTACT_POINTS"] == "cassandra.eu-west-1.amazonaws.com"
    assert (env["CSM_CASSANDRA_PORT"], env["CSM_CASSANDRA_TLS_CA_FILE"]) == (
        "9142",
        "/etc/ssl/certs/ca-certificates.crt",
    )
    assert (env["CSM_CASSANDRA_MODE"], env["CSM_CASSANDRA_AWS_REGION"]) == ("keyspaces", "eu-west-1")


def test_environment_only_sets_service_settings():
    env = {e["name"]: e["value"] for e in container("dev")["environment"]}
    assert set(env) == {
        "CSM_HOST",
        "CSM_PORT",
        "CSM_LOG_LEVEL",
        "CSM_SHUTDOWN_TIMEOUT",
        "CSM_KEEP_ALIVE_TIMEOUT",
        "CSM_CASSANDRA_CONTACT_POINTS",
        "CSM_CASSANDRA_PORT",
        "CSM_CASSANDRA_KEYSPACE",
        "CSM_CASSANDRA_LOCAL_DC",
        "CSM_CASSANDRA_TLS_CA_FILE",
        "CSM_WORKERS",
    }
    assert env["CSM_SHUTDOWN_TIMEOUT"] == "30" and container("dev")["stopTimeout"] == 35


@pytest.mark.parametrize(("cpu_units", "workers"), [(256, "1"), (1024, "1"), (2048, "2"), (4096, "4")])
def test_one_worker_per_whole_vcpu_of_the_task(cpu_units: int, workers: str):
    _, spec = spec_for("prod")
    spec = dataclasses.replace(spec, resources=dataclasses.replace(spec.resources, cpu_units=cpu_units))
    env = environment(spec)
    assert env["CSM_WORKERS"] == workers, f"cpu {cpu_units}: {env}"


def test_the_stacks_environment_sets_the_worker_count_over_the_task_size():
    _, spec = spec_for("prod")
    spec = dataclasses.replace(spec, env=tuple(sorted({**spec.env_dict, "CSM_WORKERS": "3"}.items())))
    env = environment(spec)
    assert env["CSM_WORKERS"] == "3"


def test_ecs_renderer_is_registered():
    assert "ecs" in file_renderers()
