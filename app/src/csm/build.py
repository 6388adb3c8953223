"""What is running: version, git commit and build date, set by the image's build arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

NAME = "cassandra-security-manager"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class BuildInfo:
    version: str
    git_commit: str
    build_date: str

    @classmethod
    def from_environment(cls) -> BuildInfo:
        """Reads CSM_BUILD_VERSION, CSM_BUILD_COMMIT and CSM_BUILD_DATE (the package version if unset)."""
        try:
            package_version = version("csm")
        except PackageNotFoundError:
            package_version = UNKNOWN
        return cls(
            version=os.environ.get("CSM_BUILD_VERSION") or package_version,
            git_commit=os.environ.get("CSM_BUILD_COMMIT") or UNKNOWN,
            build_date=os.environ.get("CSM_BUILD_DATE") or UNKNOWN,
        )
