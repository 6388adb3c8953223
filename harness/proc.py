"""Commands with their output captured, and a failure that shows it."""

from __future__ import annotations

import json
import subprocess  # nosec B404 # fixed argv lists, never a shell
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class CommandFailed(RuntimeError):
    pass


def run(
    *args: str,
    timeout: float = 120,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
    cwd: Path | str = ROOT,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # nosec B603 # argv list, no shell
        list(args), capture_output=True, text=True, timeout=timeout, env=env, input=input, cwd=cwd
    )
    if check and result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
            f"\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def docker_json(*args: str, timeout: float = 120) -> Any:
    return json.loads(run("docker", *args, timeout=timeout).stdout)
