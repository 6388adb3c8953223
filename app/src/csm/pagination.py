"""Opaque page tokens: Cassandra paging states signed with HMAC-SHA256 and bound to their query, so
that only states this service handed out for that query reach Cassandra (a forged paging state
makes Cassandra drop the connection)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_MAC_BYTES = 16
_PURPOSE = b"csm page token v1"


class BadPageToken(ValueError):
    """A page token that this service did not hand out."""

    def __init__(self) -> None:
        super().__init__("page_token is not one this service handed out")


class PageTokens:
    def __init__(self, master_key: bytes) -> None:
        self._key = hmac.new(master_key, _PURPOSE, hashlib.sha256).digest()

    def _mac(self, query: str, paging_state: bytes) -> bytes:
        message = query.encode() + b"\0" + paging_state
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, query: str, paging_state: bytes | None) -> str | None:
        if not paging_state:
            return None
        return base64.urlsafe_b64encode(self._mac(query, paging_state) + paging_state).decode().rstrip("=")

    def decode(self, query: str, token: str | None) -> bytes | None:
        if token is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise BadPageToken() from None
        mac, paging_state = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not paging_state or not hmac.compare_digest(mac, self._mac(query, paging_state)):
            raise BadPageToken()
        return paging_state
