"""The tokens secret's format and the verifier."""

from __future__ import annotations

import pytest

from csm.tokens import Principal, TokenFileError, TokenVerifier, parse_tokens

A = "a" * 40
B = "b" * 64


def test_parses_names_scopes_comments_and_blank_lines() -> None:
    entries = parse_tokens(f"# comment\n\nadmin:read,write:{A}\n  reader:read:{B}  \n")
    assert [principal for _, principal in entries] == [
        Principal("admin", frozenset({"read", "write"})),
        Principal("reader", frozenset({"read"})),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no token"),
        (f"admin-{A}", "line 1: expected"),
        (f"admin:read:{'a' * 31}", "line 1: the token"),
        (f"admin:read:{A} with spaces", "line 1: the token"),
        (f"admin:delete:{A}", "line 1: scopes"),
        (f"bad name:read:{A}", "line 1: the name"),
        (f"a:read:{A}\na:read:{B}", "line 2: the name 'a' is already used on line 1"),
        (f"a:read:{A}\nb:read:{A}", "line 2: the token is already used on line 1"),
    ],
)
def test_bad_tokens_file_names_the_line_but_not_the_token(text: str, message: str) -> None:
    with pytest.raises(TokenFileError, match=message) as caught:
        parse_tokens(text)
    assert A not in str(caught.value) and B not in str(caught.value)


def test_verifier_finds_the_principal_of_each_token_and_no_other() -> None:
    verifier = TokenVerifier(f"admin:read,write:{A}\nreader:read:{B}")
    assert verifier.verify(A) == Principal("admin", frozenset({"read", "write"}))
    assert verifier.verify(B) == Principal("reader", frozenset({"read"}))
    assert verifier.verify(A[:-1]) is None
    assert verifier.verify(A + "a") is None
    assert verifier.verify("") is None
