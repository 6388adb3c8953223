"""The service's two required secrets as files, the way the deployments mount them."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

NONROOT = 65532  # the image's user


def master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def write_service_secrets(directory: Path, client: str, owner: int | None = None, token: str | None = None) -> str:
    """csm_master_key and csm_api_tokens (one read,write token for ``client``) in ``directory``;
    with ``owner``, readable by that uid only, as in the image. Returns the token."""
    token = token or secrets.token_urlsafe(32)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "csm_master_key").write_text(master_key() + "\n")
    (directory / "csm_api_tokens").write_text(f"{client}:read,write:{token}\n")
    if owner is not None:
        seal(directory, owner)
    return token


def seal(directory: Path, owner: int) -> None:
    """The folder and its files owned by ``owner``, 0700 and 0400."""
    for path in (directory, *directory.iterdir()):
        os.chown(path, owner, owner)
        path.chmod(0o700 if path.is_dir() else 0o400)
