"""Runs checkov (same arguments) with its GitHub workflow schema brought up to date.

checkov 3.3.x validates each workflow against a bundled JSON schema before scanning it and
silently skips a file that does not match. That schema predates the `attestations` and `models`
job permissions, so a release workflow that asks for `attestations: write` (needed by
actions/attest-build-provenance) would not be scanned at all. The missing scopes are added with
the same allowed levels as every other scope; nothing else changes.
"""

import sys
import warnings

from checkov.github_actions.schemas import gha_workflow

NEW_PERMISSION_SCOPES = ("attestations", "models")


def patch_schema() -> None:
    scopes = gha_workflow["definitions"]["permissions-event"]["properties"]
    for scope in NEW_PERMISSION_SCOPES:
        scopes.setdefault(scope, {"$ref": "#/definitions/permissions-level"})


def main() -> int:
    patch_schema()
    from checkov.main import Checkov

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        return Checkov().run() or 0


if __name__ == "__main__":
    sys.exit(main())
