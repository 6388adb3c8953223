"""``python -m components.render_all dev prod``: every target's artifacts for each stack.

Writes build/rendered/<stack>/<target>/<files> from Pulumi.<stack>.yaml (with Pulumi.yaml's
defaults), through each target's renderer in the target table (components/targets.py). Offline: images that
are not built yet show as <repository>@sha256:000..., secrets given by name as ARNs in
account 000000000000; the deployed artifacts carry the real digest and ARNs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from components.config import ConfigError, StackConfig
from components.spec import build_spec
from components.stackfiles import ROOT, load_stack_values, stack_names
from components.targets import file_renderers

OUT = ROOT / "build" / "rendered"


def render_stack(stack: str, out: Path = OUT) -> list[Path]:
    cfg = StackConfig.load(load_stack_values(stack), stack=stack)
    spec = build_spec(cfg)
    written: list[Path] = []
    for target, renderer in sorted(file_renderers().items()):
        folder = out / stack / target
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, text in renderer(cfg, spec).items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    stacks = argv or stack_names()
    failed = False
    for stack in stacks:
        try:
            for path in render_stack(stack):
                print(path.relative_to(ROOT))
        except (ConfigError, FileNotFoundError) as exc:
            print(f"{stack}: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
