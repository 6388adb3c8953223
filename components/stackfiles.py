"""Read a stack's config the way the Pulumi CLI hands it to the program, without the CLI.

``Pulumi.<stack>.yaml`` values, plus the defaults that ``Pulumi.yaml`` declares for keys the
stack does not set (the CLI's project-config merge). Encrypted values (``secure:``) cannot be
decrypted here and become the placeholder ``SECRET_PLACEHOLDER``. Used by ``make render``,
``python -m components.config check <stack>`` and the unit tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "csm"
SECRET_PLACEHOLDER = "<secret>"  # nosec B105 # stands in for an encrypted value; not a secret


def project_file(root: Path = ROOT) -> dict[str, Any]:
    return yaml.safe_load((root / "Pulumi.yaml").read_text())


def stack_names(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _plain(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_stack_values(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """Flat ``{"csm:key": value, "aws:region": value}`` for ``stack``, project defaults applied."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name} (stacks: {', '.join(stack_names(root))})")
    doc = yaml.safe_load(path.read_text()) or {}
    values: dict[str, Any] = {}
    for key, value in (doc.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        values[full] = _plain(value)
    for key, decl in (project_file(root).get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if full not in values and isinstance(decl, dict) and "default" in decl:
            values[full] = decl["default"]
    return values


def as_pulumi_config(values: dict[str, Any]) -> dict[str, str]:
    """The same values encoded as the Pulumi runtime passes them (strings; JSON for lists/objects)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out
