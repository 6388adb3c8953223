"""Pure renderers: ServiceSpec (+ stack config) -> the artifacts a target deploys.

Registry: each module in this package registers one renderer per target with

    @register("eks")
    def render_files(cfg: StackConfig, spec: ServiceSpec) -> dict[str, str]:
        return {"manifests.yaml": ...}        # relative file name -> text

``make render`` (components/render_all.py) imports every module of this package and writes
each renderer's files to build/rendered/<stack>/<target>/. No Pulumi engine, no network.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.config import StackConfig
    from components.spec import ServiceSpec

FileRenderer = Callable[["StackConfig", "ServiceSpec"], dict[str, str]]
RENDERERS: dict[str, FileRenderer] = {}


def register(target: str) -> Callable[[FileRenderer], FileRenderer]:
    def add(fn: FileRenderer) -> FileRenderer:
        if target in RENDERERS and RENDERERS[target] is not fn:
            raise ValueError(f"a renderer for target {target!r} is already registered ({RENDERERS[target].__module__})")
        RENDERERS[target] = fn
        return fn

    return add


def load_all() -> dict[str, FileRenderer]:
    """Import every renderer module of this package; returns the registry."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return RENDERERS
