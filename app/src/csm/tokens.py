"""The API tokens secret: parsing it and finding the principal of a presented token.

The tokens secret holds one token a line, ``name:scopes:token``, where scopes is ``read``,
``write`` or ``read,write``; blank lines and lines starting with ``#`` are ignored. A token
is 32 to 256 characters of ``A-Z a-z 0-9 . _ ~ + / = -`` (``openssl rand -hex 32`` makes one).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

Scope = Literal["read", "write"]
SCOPES: frozenset[str] = frozenset({"read", "write"})

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{32,256}$")


class TokenFileError(ValueError):
    """The tokens secret does not parse; the message names lines, never a token."""


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]


def parse_tokens(text: str) -> list[tuple[bytes, Principal]]:
    """Parses the tokens secret into (SHA-256 of the token, principal) pairs."""
    entries: list[tuple[bytes, Principal]] = []
    seen_names: dict[str, int] = {}
    seen_tokens: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep1, rest = line.partition(":")
        scope_list, sep2, token = rest.partition(":")
        if not (sep1 and sep2):
            raise TokenFileError(f"line {number}: expected 'name:scopes:token'")
        if not _NAME.match(name):
            raise TokenFileError(f"line {number}: the name must be 1-64 of A-Z a-z 0-9 _ . -")
        scopes = frozenset(s.strip() for s in scope_list.split(","))
        if not scopes or not scopes <= SCOPES:
            raise TokenFileError(f"line {number}: scopes must be read, write or read,write")
        if not _TOKEN.match(token):
            raise TokenFileError(f"line {number}: the token must be 32-256 of A-Z a-z 0-9 . _ ~ + / = -")
        digest = hashlib.sha256(token.encode()).digest()
        if name in seen_names:
            raise TokenFileError(f"line {number}: the name {name!r} is already used on line {seen_names[name]}")
        if digest in seen_tokens:
            raise TokenFileError(f"line {number}: the token is already used on line {seen_tokens[digest]}")
        seen_names[name] = seen_tokens[digest] = number
        entries.append((digest, Principal(name, scopes)))
    if not entries:
        raise TokenFileError("holds no token")
    return entries


class TokenVerifier:
    """Finds the principal of a presented token, in time independent of which token (if any) matches."""

    def __init__(self, tokens_text: str) -> None:
        self._entries = parse_tokens(tokens_text)

    def verify(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: Principal | None = None
        for candidate, principal in self._entries:
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found
