"""``python -m reliability``: runs the cases on the real engine and writes the report.

    python -m reliability [--profile ci|full|soak] [--only CASE,...] [--report PATH] [--keep]

Exit status 0 when every case passed, 1 when one failed, 2 when the engine or images are missing.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from reliability import report
from reliability.cases import BUILD, CASES, PROFILES, swarm_cleanup
from reliability.report import CaseResult
from reliability.stack import Stack, Unavailable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reliability", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="full",
        help="ci: the pytest budget; full: make reliability (default); soak: long load",
    )
    parser.add_argument("--only", help=f"comma-separated cases (default all): {', '.join(CASES)}")
    parser.add_argument("--report", type=Path, default=BUILD / "report.md")
    parser.add_argument("--keep", action="store_true", help="leave the csmrel stack running afterwards")
    args = parser.parse_args(argv)
    chosen = list(CASES) if not args.only else [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    profile = PROFILES[args.profile]
    started = time.time()
    try:
        stack = Stack.from_harness()
    except Unavailable as error:
        print(f"reliability: {error}", file=sys.stderr)
        return 2
    was_running = stack.running()
    print(f"reliability: starting the csmrel stack (CSM on 127.0.0.1:{stack.port})", file=sys.stderr)
    stack.up()
    results: list[CaseResult] = []
    try:
        for name in chosen:
            print(f"reliability: {name} ...", file=sys.stderr, flush=True)
            began = time.time()
            try:
                result = CASES[name](stack, profile)
            except Exception as error:  # one broken case must not hide the others' figures
                result = CaseResult(name, name, error=f"{type(error).__name__}: {error}"[:2000])
                traceback.print_exc()
                try:
                    stack.restore_csm()
                except Exception:  # reported by the next case if it matters
                    traceback.print_exc()
            result.seconds = result.seconds or time.time() - began
            results.append(result)
            print(
                f"reliability: {name}: {'pass' if result.passed else 'FAIL'} ({time.time() - began:.0f} s)"
                + ("" if result.passed else "\n  " + result.failures().replace("\n", "\n  ")),
                file=sys.stderr,
                flush=True,
            )
            report.write(results, args.report, profile.name, started)
    finally:
        if not args.keep:
            swarm_cleanup()
            if not was_running:
                stack.down()
    print(f"reliability: report in {args.report}", file=sys.stderr)
    print(report.render(results, profile.name, started))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
