"""Pulumi.yaml declares every config key (type, default, description) exactly as the model does,
the stack files are valid, and `make render` writes every registered target's files."""

from __future__ import annotations

import json

import pytest
import yaml

from components import render_all
from components.config import KEYS, StackConfig, pulumi_project_config, render_markdown, render_pulumi_yaml
from components.stackfiles import ROOT, load_stack_values

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def test_pulumi_yaml_is_generated_from_the_model():
    assert (ROOT / "Pulumi.yaml").read_text() == render_pulumi_yaml(), (
        "regenerate: python -m components.config pulumi-yaml > Pulumi.yaml"
    )


def test_stack_config_reference_is_generated_from_the_model():
    doc = ROOT / "docs" / "stack-config.md"
    assert doc.read_text() == render_markdown(), (
        "regenerate: python -m components.config markdown > docs/stack-config.md"
    )


def test_stack_config_reference_lists_every_key():
    text = render_markdown()
    missing = [key for key in PROJECT["config"] if f"| `csm:{key}` |" not in text]
    assert not missing, f"docs/stack-config.md lacks {missing}"


def test_python_runtime_uses_the_project_virtualenv():
    assert PROJECT["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}


def test_every_key_is_declared_with_type_and_description():
    config = PROJECT["config"]
    assert set(config) == set(KEYS)
    for key, decl in config.items():
        assert decl["type"] in ("string", "integer", "boolean", "array"), key
        assert decl["description"], key
        if decl["type"] == "array":
            assert decl["items"] == {"type": "string"}, key


def test_only_environment_is_required():
    assert [k for k, d in PROJECT["config"].items() if "default" not in d] == ["environment"]


def test_declared_defaults_match_their_types():
    pytypes = {"string": str, "integer": int, "boolean": bool, "array": list}
    for key, decl in pulumi_project_config().items():
        if "default" in decl:
            assert type(decl["default"]) is pytypes[decl["type"]], key


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_file_only_uses_declared_keys(stack):
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    ours = [k.split(":", 1)[1] for k in doc["config"] if k.startswith("csm:")]
    assert set(ours) <= set(KEYS)


def test_prod_stack_holds_the_prod_rules():
    cfg = StackConfig.load(load_stack_values("prod"), "prod")
    assert cfg.prod and cfg.service.desired_count >= 2 and cfg.network.az_count >= 2
    assert cfg.ingress.certificate_arn and cfg.general.deletion_protection


def test_render_all_writes_each_target_per_stack(tmp_path):
    written = render_all.render_stack("dev", out=tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert {"dev/ecs/container-definitions.json", "dev/ecs/task-definition.json"} <= names
    assert json.loads((tmp_path / "dev/ecs/container-definitions.json").read_text())[0]["name"] == "csm"


def test_render_all_reports_a_bad_stack(capsys):
    assert render_all.main(["nosuchstack"]) == 1
    assert "nosuchstack" in capsys.readouterr().err
