"""Page tokens: only the service's own, for the query they came from, decode."""

from __future__ import annotations

import pytest

from csm.pagination import BadPageToken, PageTokens

QUERY = "SELECT * FROM certificates"


def test_round_trip() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.encode(QUERY, b"\x00\x01state")
    assert token is not None and "=" not in token
    assert tokens.decode(QUERY, token) == b"\x00\x01state"


def test_no_state_means_no_token() -> None:
    tokens = PageTokens(b"k" * 32)
    assert tokens.encode(QUERY, None) is None and tokens.decode(QUERY, None) is None


@pytest.mark.parametrize("token", ["", "AAAA", "%%%", "not base64 at all!", "A" * 200])
def test_forged_tokens_are_refused(token: str) -> None:
    with pytest.raises(BadPageToken):
        PageTokens(b"k" * 32).decode(QUERY, token)


def test_token_of_another_key_or_query_is_refused() -> None:
    token = PageTokens(b"k" * 32).encode(QUERY, b"state")
    with pytest.raises(BadPageToken):
        PageTokens(b"j" * 32).decode(QUERY, token)
    with pytest.raises(BadPageToken):
        PageTokens(b"k" * 32).decode("SELECT * FROM audit_log", token)
