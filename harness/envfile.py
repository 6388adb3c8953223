"""KEY=value files (.local/*.env, Compose env files): comments and blank lines skipped."""

from __future__ import annotations

from pathlib import Path


def read_env(path: Path) -> dict[str, str]:
    """The file's values; an absent file has none."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.lstrip().startswith("#"):
                values[key.strip()] = value.strip()
    return values
