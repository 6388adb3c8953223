"""Render the local Swarm's stack file (localengine/swarm render|up).

    python deploy/swarm/local/render.py --image REF --proxy-image REF --secrets-dir DIR \
        --arch x86_64|arm64 --out DIR [--config deploy/swarm/local/config.yaml]

Reads the stack config file (Pulumi.<stack>.yaml format, with Pulumi.yaml's defaults), adds
the image, proxy image, architecture and the secret values (one file per Pulumi secret key in
DIR, e.g. DIR/apiTokens), checks it with the same model as `pulumi up`, and writes
  OUT/stack.yaml    components/swarm/render.py's output, secrets named by content hash
  OUT/secrets.tsv   one line per Docker secret: <key> TAB <versioned name> TAB <value file>
The secret values are only read to hash them; they are never written anywhere by this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from components.config import ConfigError, StackConfig, qualify  # noqa: E402
from components.spec import build_spec  # noqa: E402
from components.stackfiles import project_file  # noqa: E402
from components.swarm import render  # noqa: E402

CONFIG = ROOT / "deploy" / "swarm" / "local" / "config.yaml"


def load_values(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The file's config, Pulumi.yaml's defaults for keys it does not set, then ``overrides``."""
    doc = yaml.safe_load(path.read_text()) or {}
    values = {qualify(k): v for k, v in (doc.get("config") or {}).items()}
    for key, decl in (project_file(ROOT).get("config") or {}).items():
        if qualify(key) not in values and isinstance(decl, dict) and "default" in decl:
            values[qualify(key)] = decl["default"]
    values.update({qualify(k): v for k, v in overrides.items()})
    return values


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="render.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--image", required=True, help="the CSM image, repository@sha256:<digest>")
    parser.add_argument("--proxy-image", required=True, help="the proxy image, repository@sha256:<digest>")
    parser.add_argument("--arch", required=True, choices=["x86_64", "arm64"])
    parser.add_argument("--secrets-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    doc = yaml.safe_load(args.config.read_text()) or {}
    items = (doc.get("config") or {}).get("csm:secrets", [])
    refs = [item.split("=", 1)[1] for item in items]
    files = {ref: args.secrets_dir / ref for ref in refs}
    absent = [str(p) for p in files.values() if not p.is_file()]
    if absent:
        print(f"render.py: missing secret value files: {', '.join(absent)}", file=sys.stderr)
        return 1
    overrides: dict[str, Any] = {
        "imageRef": args.image,
        "swarmProxyImage": args.proxy_image,
        "serviceArchitecture": args.arch,
    }
    overrides.update({ref: "<secret>" for ref in refs})  # present, as `pulumi config set --secret` makes them
    try:
        cfg = StackConfig.load(load_values(args.config, overrides), stack="local")
    except ConfigError as exc:
        print(f"render.py: {args.config}: {exc}", file=sys.stderr)
        return 1
    spec = build_spec(cfg)
    stack = cfg.swarm.stack_name
    rows, names = [], {}
    for secret in spec.secrets:
        key = render.secret_key(secret)
        path = files[secret.ref]
        names[key] = render.versioned_secret_name(stack, key, path.read_bytes())
        rows.append(f"{key}\t{names[key]}\t{path}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / render.STACK_FILE).write_text(render.render_stack(spec, render.swarm_options(cfg), names))
    (args.out / "secrets.tsv").write_text("".join(rows))
    (args.out / "stack-name").write_text(stack + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
