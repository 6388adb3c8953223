"""`localengine/csm-local pulumi ...`: the real Pulumi engine on this machine, through the Automation API.

The CLI and provider plugins come from localengine/toolchain (built from the Go module proxy). The
Python language host is not served there, so the program runs as an Automation API inline program:
the SDK's own in-process language server runs ``__main__.py`` and hands the CLI ``--client``. The
verbs and flags are the ones users type at ``pulumi``:

    pulumi [--stack S] preview [--diff] [--refresh] [--expect-no-changes] [--policy-pack DIR]...
    pulumi [--stack S] up [--yes] [--diff] [--refresh] [--expect-no-changes] [--policy-pack DIR]...
    pulumi [--stack S] refresh [--yes] [--expect-no-changes]
    pulumi [--stack S] destroy [--yes]
    pulumi [--stack S] stack output [NAME] [--json] [--show-secrets]
    pulumi [--stack S] stack export [--file F] [--show-secrets]
    pulumi [--stack S] stack rm [--force] --yes
    pulumi [--stack S] config set [--secret] KEY VALUE | config get KEY | config rm KEY

The backend is this checkout's own file backend (.local/pulumi/state); the secrets passphrase is
generated once into .local/secrets/pulumi-passphrase (0600); update checks are off. The stack named by
--stack (default: local) is created when missing. Pulumi.<stack>.yaml in the repository stays as it
is: the engine works on a copy in .local/pulumi/work whose committed keys are refreshed from it on
every run, and which alone holds what `config set` adds (secrets, the passphrase salt).
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import secrets
import signal
import subprocess  # nosec B404 # fixed argv lists, no shell
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
TOOLCHAIN = ROOT / "localengine" / "toolchain" / "build"
STATE = Path(os.environ.get("CSM_LOCAL_STATE", "/var/lib/csm-local"))
PLUGINS = {"docker-build": ("docker-build", "0.0.22"), "kubernetes-provider": ("kubernetes", "4.25.0")}
PROJECT = "csm"


class Refused(Exception):
    """A clear message for the user, no traceback; exit 2 (usage) or 1."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def toolchain_bin(name: str) -> Path:
    done = subprocess.run([str(TOOLCHAIN), "--bin", name], capture_output=True, text=True)  # nosec B603 # fixed argv
    if done.returncode != 0:
        raise Refused(done.stderr.strip() or f"{name} is not built: run localengine/toolchain/build {name}")
    return Path(done.stdout.strip())


def passphrase_file() -> Path:
    path = LOCAL / "secrets" / "pulumi-passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return path


def engine_env(home: Path) -> dict[str, str]:
    state = LOCAL / "pulumi" / "state"
    state.mkdir(parents=True, exist_ok=True)
    return {
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE_FILE": os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE") or str(passphrase_file()),
        "PULUMI_HOME": str(home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",  # the SDK is a few releases older than the CLI
    }


def ensure_plugins(pulumi: Path, env: dict[str, str]) -> None:
    """Install the locally built provider plugins into PULUMI_HOME once (the engine never downloads)."""
    plugins = Path(env["PULUMI_HOME"]) / "plugins"
    for build_name, (plugin, version) in PLUGINS.items():
        if (plugins / f"resource-{plugin}-v{version}").is_dir() and not (
            plugins / f"resource-{plugin}-v{version}.partial"
        ).exists():
            continue
        binary = toolchain_bin(build_name) / f"pulumi-resource-{plugin}"
        done = subprocess.run(
            [str(pulumi), "plugin", "install", "resource", plugin, version, "--file", str(binary)],  # nosec B603
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise Refused(f"installing the {plugin} {version} plugin failed: {done.stderr.strip()}")


def committed_config(stack: str) -> dict[str, Any]:
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return {}
    return (yaml.safe_load(path.read_text()) or {}).get("config") or {}


def prepare_work_dir(stack: str) -> Path:
    """.local/pulumi/work: Pulumi.yaml (a link) and Pulumi.<stack>.yaml = the committed keys + this
    checkout's own (secrets, salt)."""
    work = LOCAL / "pulumi" / "work"
    work.mkdir(parents=True, exist_ok=True)
    link = work / "Pulumi.yaml"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(ROOT / "Pulumi.yaml")
    stack_file = work / f"Pulumi.{stack}.yaml"
    current = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else None
    current = current or {}
    config = {**(current.get("config") or {}), **committed_config(stack)}
    current["config"] = config
    stack_file.write_text(yaml.safe_dump(current, sort_keys=False))
    return work


def program() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    wall, cpu = time.perf_counter(), time.process_time()
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    # The program's own share of a preview or up (imports, config, components), apart from the engine's and providers'.
    say(f"program: ran in {time.perf_counter() - wall:.2f} s ({time.process_time() - cpu:.2f} s CPU)")


def select_stack(name: str) -> Any:
    from pulumi import automation as auto

    home = Path(os.environ.get("CSM_PULUMI_HOME", str(STATE / "pulumi-home")))
    pulumi = toolchain_bin("pulumi") / "pulumi"
    env = engine_env(home)
    ensure_plugins(pulumi, env)
    work = prepare_work_dir(name)
    command = auto.PulumiCommand(root=str(pulumi.parent.parent), skip_version_check=True)
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(work), pulumi_home=str(home), env_vars=env, secrets_provider="passphrase", pulumi_command=command
    )
    return auto.create_or_select_stack(stack_name=name, project_name=PROJECT, program=program, opts=opts)


def local_stack_config(stack: Any) -> None:
    """The local stack's machine-specific secrets, kept in this checkout's stack file."""
    from pulumi import automation as auto

    wanted: dict[str, Callable[[], str | None]] = {
        "csm:kubernetesKubeconfig": kube_value(os.environ.get("CSM_LOCAL_KUBECONFIG", "admin.kubeconfig")),
        "csm:cassandraPassword": kube_value("cassandra-password"),
        "csm:masterKey": lambda: __import__("base64").b64encode(secrets.token_bytes(32)).decode(),
        "csm:apiTokens": lambda: f"local-admin:read,write:{secrets.token_urlsafe(32)}",
    }
    have = stack.get_all_config()
    for key, make in wanted.items():
        fixed = key in ("csm:kubernetesKubeconfig", "csm:cassandraPassword")
        if key in have and not fixed:
            continue
        value = make()
        if value is None:
            continue
        if key not in have or have[key].value != value:
            stack.set_config(key, auto.ConfigValue(value=value, secret=True))


def write_build_ca() -> None:
    """/var/lib/csm-local/build-ca.pem: the CAs this machine adds to Debian's public ones (an
    intercepting proxy's, a corporate one), for the image build's `ca` secret. Not the whole system
    bundle: docker-build hands secrets to buildx in environment variables, and one over 128 KiB
    (the bundle is ~215 KiB) fails with "argument list too long"."""
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt"))
    text = "".join(p.read_text().rstrip() + "\n" for p in extra)
    target = STATE / "build-ca.pem"
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def kube_value(name: str) -> Callable[[], str | None]:
    """A file the local cluster (localengine/kube) writes: its admin kubeconfig, its Cassandra's password."""

    def read() -> str | None:
        path = STATE / "kube" / name  # an absolute name stays as it is
        return path.read_text().strip() if path.is_file() else None

    return read


def say(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    stack = select_stack(args.stack)
    if args.verb in ("preview", "up"):
        write_build_ca()  # any stack may name it in csm:imageBuildSecretFiles
    if args.stack == "local" and args.verb in ("preview", "up", "refresh"):
        local_stack_config(stack)
    common = {"on_output": say, "color": "never"}
    if args.verb == "preview":
        result = stack.preview(
            diff=args.diff,
            expect_no_changes=args.expect_no_changes or None,
            refresh=args.refresh or None,
            policy_packs=[str(Path(p).resolve()) for p in args.policy_pack] or None,
            **common,
        )
        say(f"preview: {json.dumps(result.change_summary, sort_keys=True)}")
    elif args.verb == "up":
        refuse_without_yes(args, "up")
        result = stack.up(
            diff=args.diff,
            expect_no_changes=args.expect_no_changes or None,
            refresh=args.refresh or None,
            policy_packs=[str(Path(p).resolve()) for p in args.policy_pack] or None,
            **common,
        )
        say(f"up: {result.summary.result} {json.dumps(result.summary.resource_changes, sort_keys=True)}")
    elif args.verb == "refresh":
        refuse_without_yes(args, "refresh")
        result = stack.refresh(expect_no_changes=args.expect_no_changes or None, **common)
        say(f"refresh: {result.summary.result} {json.dumps(result.summary.resource_changes, sort_keys=True)}")
    elif args.verb == "destroy":
        refuse_without_yes(args, "destroy")
        result = stack.destroy(**common)
        say(f"destroy: {result.summary.result} {json.dumps(result.summary.resource_changes, sort_keys=True)}")
    elif args.verb == "stack" and args.what == "output":
        outputs = stack.outputs()
        shown = {k: (v.value if args.show_secrets or not v.secret else "[secret]") for k, v in outputs.items()}
        if args.name:
            if args.name not in shown:
                raise Refused(f"current stack does not have output property '{args.name}'")
            value = shown[args.name]
            print(json.dumps(value) if args.json else value)
        else:
            print(
                json.dumps(shown, indent=2, sort_keys=True)
                if args.json
                else "\n".join(f"{k}  {v}" for k, v in sorted(shown.items()))
            )
    elif args.verb == "stack" and args.what == "export":
        argv = ["stack", "export", "--stack", args.stack] + (["--show-secrets"] if args.show_secrets else [])
        text = stack.workspace.pulumi_command.run(argv, stack.workspace.work_dir, stack.workspace.env_vars).stdout
        if args.file:
            Path(args.file).write_text(text)
        else:
            sys.stdout.write(text)
    elif args.verb == "stack" and args.what == "rm":
        refuse_without_yes(args, "stack rm")
        stack.workspace.remove_stack(args.stack, force=args.force)
        say(f"stack {args.stack} removed (its resources, if any, were {'forgotten' if args.force else 'already gone'})")
    elif args.verb == "config" and args.what == "set":
        from pulumi import automation as auto

        key = args.key if ":" in args.key else f"{PROJECT}:{args.key}"
        if key in committed_config(args.stack):
            raise Refused(f"{key} is set in Pulumi.{args.stack}.yaml in the repository: change it there", code=2)
        stack.set_config(key, auto.ConfigValue(value=args.value, secret=args.secret))
    elif args.verb == "config" and args.what == "rm":
        key = args.key if ":" in args.key else f"{PROJECT}:{args.key}"
        if key in committed_config(args.stack):
            raise Refused(f"{key} is set in Pulumi.{args.stack}.yaml in the repository: change it there", code=2)
        stack.remove_config(key)
    elif args.verb == "config" and args.what == "get":
        key = args.key if ":" in args.key else f"{PROJECT}:{args.key}"
        print(stack.get_config(key).value)
    return 0


def refuse_without_yes(args: argparse.Namespace, verb: str) -> None:
    if not args.yes:
        raise Refused(
            f"'{verb}' changes the stack: pass --yes (this wrapper never prompts); "
            f"run 'preview' first to see what it would do",
            code=2,
        )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="csm-local pulumi", description="The Pulumi engine on this machine (Automation API)."
    )
    top.add_argument("--stack", "-s", default="local", help="stack name (created when missing; default: local)")
    verbs = top.add_subparsers(dest="verb", required=True)
    for name in ("preview", "up", "refresh", "destroy"):
        sub = verbs.add_parser(name)
        sub.add_argument("--stack", "-s", default=argparse.SUPPRESS)
        if name != "preview":
            sub.add_argument("--yes", "-y", action="store_true")
        if name in ("preview", "up"):
            sub.add_argument("--diff", action="store_true")
            sub.add_argument("--refresh", action="store_true")
            sub.add_argument("--policy-pack", action="append", default=[])
        if name != "destroy":
            sub.add_argument("--expect-no-changes", action="store_true")
    stack_cmd = verbs.add_parser("stack").add_subparsers(dest="what", required=True)
    out = stack_cmd.add_parser("output")
    out.add_argument("name", nargs="?")
    out.add_argument("--json", action="store_true")
    out.add_argument("--show-secrets", action="store_true")
    out.add_argument("--stack", "-s", default=argparse.SUPPRESS)
    exp = stack_cmd.add_parser("export")
    exp.add_argument("--file")
    exp.add_argument("--show-secrets", action="store_true")
    exp.add_argument("--stack", "-s", default=argparse.SUPPRESS)
    rm = stack_cmd.add_parser("rm")
    rm.add_argument(
        "--force", "-f", action="store_true", help="remove even if resources remain (they are forgotten, not deleted)"
    )
    rm.add_argument("--yes", "-y", action="store_true")
    rm.add_argument("--stack", "-s", default=argparse.SUPPRESS)
    config_cmd = verbs.add_parser("config").add_subparsers(dest="what", required=True)
    cset = config_cmd.add_parser("set")
    cset.add_argument("--secret", action="store_true")
    cset.add_argument("--stack", "-s", default=argparse.SUPPRESS)
    cset.add_argument("key")
    cset.add_argument("value")
    crm = config_cmd.add_parser("rm")
    crm.add_argument("--stack", "-s", default=argparse.SUPPRESS)
    crm.add_argument("key")
    cget = config_cmd.add_parser("get")
    cget.add_argument("--stack", "-s", default=argparse.SUPPRESS)
    cget.add_argument("key")
    return top


def on_interrupt(signum: int, frame: object) -> None:
    # The CLI got the same Ctrl-C and cancels the update itself; it still needs this process (the
    # program's language server) to finish and release the stack's lock, so this process stays.
    print(
        "csm-local pulumi: interrupted: the engine is finishing what is in flight and saving its state "
        "(Ctrl-C again makes the engine stop at once)",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from pulumi import automation as auto

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        return run(args)
    except Refused as exc:
        print(f"csm-local pulumi: {exc}", file=sys.stderr)
        return exc.code
    except auto.CommandError as exc:
        # The engine's own message (wrong passphrase, locked stack, a failed update), not our traceback.
        # Its stdout has been streamed already.
        text = str(exc)
        stderr = text.split("\n stderr: ", 1)[1].strip() if "\n stderr: " in text else text.strip()
        code = text.split("code: ", 1)[1].split("\n", 1)[0].strip() if "code: " in text else "?"
        print(
            stderr or f"csm-local pulumi: {args.verb} failed (the engine exited {code}; its output is above)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
