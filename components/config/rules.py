"""Cross-key rules: each registers itself with ``@rule(keys...)`` and yields a Problem per violation."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable

from components.config.base import Problem, qualify

if typing.TYPE_CHECKING:
    from components.config.model import StackConfig


RuleFn = Callable[["StackConfig"], Iterable[Problem]]
RULES: list[tuple[tuple[str, ...], RuleFn]] = []


def rule(*keys: str) -> Callable[[RuleFn], RuleFn]:
    """Register a cross-key rule; it is skipped when one of ``keys`` already failed its own check."""

    def register(fn: RuleFn) -> RuleFn:
        RULES.append((keys, fn))
        return fn

    return register


def P(key: str, reason: str) -> Problem:
    return Problem(qualify(key), reason)
