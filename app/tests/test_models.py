"""Request models refuse input the store could not hold (422 before any write, never a 500)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from csm.models import MAX_DNS_NAMES_CHARS, CertificateIssue

AUTHORITY = "00000000-0000-0000-0000-000000000000"


def label_name(index: int, length: int) -> str:
    """A valid DNS name of exactly ``length`` characters (labels of at most 63)."""
    name = f"n{index}"
    while len(name) < length:
        name = f"{'a' * min(63, length - len(name) - 1)}.{name}" if length - len(name) > 1 else "b" + name
    return name[-length:] if len(name) > length else name


def test_many_long_names_are_refused() -> None:
    names = [label_name(i, 250) for i in range(100)]  # the reliability suite's request: a 500 before
    assert all(len(name) == 250 for name in names)
    with pytest.raises(ValidationError, match="dns_names together"):
        CertificateIssue(authority_id=AUTHORITY, dns_names=names)


def test_names_up_to_the_bound_are_accepted() -> None:
    names = [label_name(i, 250) for i in range(MAX_DNS_NAMES_CHARS // 250)]
    assert len(CertificateIssue(authority_id=AUTHORITY, dns_names=names).dns_names) == len(names)


def test_name_longer_than_253_is_refused() -> None:
    with pytest.raises(ValidationError):
        CertificateIssue(authority_id=AUTHORITY, dns_names=[label_name(0, 254)])
