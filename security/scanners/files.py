"""Which files each scanner is given (paths relative to the repository root)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml

SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".local",
    "build",
    "tests",
    "testdata",
    ".mypy_cache",
    ".ruff_cache",
}
PYTHON_DIRS = ("app/src", "components", "policy", "security")
RENDERED_K8S = ("eks", "kubernetes")


def walk(root: Path, base: str) -> Iterable[Path]:
    top = root / base
    if not top.exists():
        return
    if top.is_file():
        yield top
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".venv"))
        for name in sorted(filenames):
            yield Path(dirpath) / name


def rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def dockerfiles(root: Path) -> list[str]:
    return sorted(
        rel(root, p)
        for p in walk(root, ".")
        if p.name == "Dockerfile" or p.name.startswith("Dockerfile.") or p.name.endswith(".Dockerfile")
    )


def workflows(root: Path) -> list[str]:
    wf = root / ".github" / "workflows"
    return sorted(rel(root, p) for p in wf.glob("*.y*ml")) if wf.is_dir() else []


def rendered(root: Path, targets: Iterable[str] = RENDERED_K8S, exts=(".yaml", ".yml", ".json")) -> list[str]:
    out = []
    base = root / "build" / "rendered"
    for target in targets:
        for p in sorted(base.glob(f"*/{target}/**/*")):
            if p.is_file() and p.suffix in exts:
                out.append(rel(root, p))
    return out


def compose(root: Path) -> list[tuple[str, bool, bool]]:
    """(path, is_swarm_stack, is_local) for Compose and stack files."""
    found = []
    for p in walk(root, "deploy"):
        if p.suffix not in (".yaml", ".yml"):
            continue
        try:
            docs = list(yaml.safe_load_all(p.read_text(encoding="utf-8")))
            doc = docs[0] if len(docs) == 1 else None  # several documents: Kubernetes manifests, never Compose
        except (yaml.YAMLError, UnicodeDecodeError):
            doc = {"services": None}  # compose_rules.check_file reports it
        if isinstance(doc, dict) and "services" in doc:
            path = rel(root, p)
            swarm = "swarm" in path.split("/") or "stack" in p.name
            found.append((path, swarm, path.startswith("deploy/local/")))
    for path in rendered(root, ["swarm"], exts=(".yaml", ".yml")):
        found.append((path, True, False))
    return found


def python(root: Path) -> list[str]:
    found = [rel(root, p) for base in PYTHON_DIRS for p in walk(root, base) if p.suffix == ".py"]
    found += [rel(root, p) for p in sorted(root.glob("*.py"))]
    return sorted(set(found))


def stack_config(root: Path) -> list[str]:
    return sorted(rel(root, p) for p in root.glob("Pulumi*.yaml"))
