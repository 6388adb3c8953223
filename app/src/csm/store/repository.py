"""Queries for authorities, certificates and the append-only audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from cassandra.cluster import ResultSet
from cassandra.util import datetime_from_uuid1, uuid_from_time

from csm.models import AuditEvent, Authority, Certificate, CertificateStatus
from csm.pagination import PageTokens
from csm.store.database import Database
from csm.store.migrations import EXPIRY_BUCKETS_SCOPE, expiry_bucket

_AUTHORITY_FIELDS = tuple(Authority.model_fields)
_AUTHORITY_COLUMNS = ", ".join(_AUTHORITY_FIELDS)
_CERTIFICATE_FIELDS = tuple(name for name in Certificate.model_fields if name != "status")
_CERTIFICATE_COLUMNS = ", ".join(_CERTIFICATE_FIELDS)
_INSERT_BY_AUTHORITY = "INSERT INTO certificates_by_authority (authority_id, not_after, id) VALUES (?, ?, ?)"
_INSERT_BY_EXPIRY = "INSERT INTO certificates_by_expiry (bucket, not_after, id, authority_id) VALUES (?, ?, ?, ?)"
_INSERT_BUCKET = "INSERT INTO certificate_expiry_buckets (scope, bucket) VALUES (?, ?)"
_SELECT_CERTIFICATE = f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates WHERE id = ?"  # nosec B608 - identifiers are module constants
_BY_AUTHORITY = "SELECT id FROM certificates_by_authority WHERE authority_id = ?"
_BY_AUTHORITY_EXPIRING = _BY_AUTHORITY + " AND not_after > ? AND not_after <= ?"
_BUCKETS = "SELECT bucket FROM certificate_expiry_buckets WHERE scope = ? AND bucket >= ? AND bucket <= ?"
_BY_EXPIRY = "SELECT id FROM certificates_by_expiry WHERE bucket = ? AND not_after > ? AND not_after <= ?"
# A page follows Cassandra's paging states across empty pages (Amazon Keyspaces returns them) up to this
# many round trips; past that it hands the client a token to go on from.
MAX_ROUND_TRIPS = 50
_INSERT_AUDIT = (
    "INSERT INTO audit_log (day, at, actor, action, target_type, target_id, details) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def _status(row: dict[str, Any], now: datetime) -> CertificateStatus:
    if row["revoked_at"] is not None:
        return "revoked"
    return "expired" if _utc(row["not_after"]) <= now else "valid"  # type: ignore[operator]


class Repository:
    def __init__(self, database: Database, page_tokens: PageTokens) -> None:
        self._db = database
        self._pages = page_tokens

    def _audit(
        self, at: datetime, actor: str, action: str, target_type: str, target_id: UUID, details: dict[str, str]
    ) -> tuple[str, tuple[Any, ...]]:
        return _INSERT_AUDIT, (at.date(), uuid_from_time(at), actor, action, target_type, str(target_id), details)

    async def _walk(
        self, operation: str, cql: str, params: Sequence[Any], limit: int, paging_state: bytes | None
    ) -> tuple[list[dict[str, Any]], bytes | None]:
        """Up to ``limit`` rows from ``paging_state`` on, following paging states across empty or short
        pages; returns them and the paging state to go on from (None: no more rows)."""
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_ROUND_TRIPS):
            result: ResultSet = await self._db.execute(
                operation, cql, params, fetch_size=limit - len(rows), paging_state=paging_state
            )
            rows += result.current_rows
            paging_state = result.paging_state
            if paging_state is None or len(rows) >= limit:
                break
        return rows, paging_state

    async def _page(
        self, operation: str, cql: str, params: Sequence[Any], limit: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        rows, paging_state = await self._walk(operation, cql, params, limit, self._pages.decode(cql, page_token))
        return rows, self._pages.encode(cql, paging_state)

    async def add_authority(self, authority: Authority, sealed_key: bytes) -> None:
        insert = (
            f"INSERT INTO authorities ({_AUTHORITY_COLUMNS}, sealed_key) VALUES ({_marks(len(_AUTHORITY_FIELDS) + 1)})",  # nosec B608 - identifiers are module constants; values are bound parameters
            (*(getattr(authority, name) for name in _AUTHORITY_FIELDS), sealed_key),
        )
        audit = self._audit(
            authority.created_at,
            authority.created_by,
            "authority.create",
            "authority",
            authority.id,
            {
                "name": authority.name,
                "key_algorithm": authority.key_algorithm,
                "serial_number": authority.serial_number,
            },
        )
        await self._db.execute_batch("authority_create", [insert, audit])

    async def authority(self, authority_id: UUID) -> tuple[Authority, bytes] | None:
        rows = await self._db.execute(
            "authority_get",
            f"SELECT {_AUTHORITY_COLUMNS}, sealed_key FROM authorities WHERE id = ?",  # nosec B608 - identifiers are module constants; values are bound parameters
            (authority_id,),
        )
        row = rows.one()
        if row is None:
            return None
        sealed = row.pop("sealed_key")
        return _authority(row), sealed

    async def authorities(self) -> list[Authority]:
        rows = await self._db.execute("authority_list", f"SELECT {_AUTHORITY_COLUMNS} FROM authorities")  # nosec B608 - identifiers are module constants; values are bound parameters
        return sorted((_authority(row) for row in rows.current_rows), key=lambda a: a.created_at)

    async def add_certificate(self, certificate: Certificate) -> None:
        insert = (
            f"INSERT INTO certificates ({_CERTIFICATE_COLUMNS}) VALUES ({_marks(len(_CERTIFICATE_FIELDS))})",  # nosec B608 - identifiers are module constants; values are bound parameters
            tuple(getattr(certificate, name) for name in _CERTIFICATE_FIELDS),
        )
        audit = self._audit(
            certificate.created_at,
            certificate.created_by,
            "certificate.issue",
            "certificate",
            certificate.id,
            {
                "authority_id": str(certificate.authority_id),
                "serial_number": certificate.serial_number,
                "kind": certificate.kind,
                "common_name": certificate.common_name or "",
            },
        )
        c = certificate
        month = expiry_bucket(c.not_after)
        await self._db.execute_batch(
            "certificate_issue",
            [
                insert,
                (_INSERT_BY_AUTHORITY, (c.authority_id, c.not_after, c.id)),
                (_INSERT_BY_EXPIRY, (month, c.not_after, c.id, c.authority_id)),
                (_INSERT_BUCKET, (EXPIRY_BUCKETS_SCOPE, month)),
                audit,
            ],
        )

    async def certificate(self, certificate_id: UUID, now: datetime) -> Certificate | None:
        rows = await self._db.execute("certificate_get", _SELECT_CERTIFICATE, (certificate_id,))
        row = rows.one()
        return _certificate(row, now) if row is not None else None

    async def certificates(
        self,
        now: datetime,
        *,
        authority_id: UUID | None,
        expiring_before: datetime | None,
        limit: int,
        page_token: str | None,
    ) -> tuple[list[Certificate], str | None]:
        """A page of certificates, optionally of one authority and/or valid now but expiring before a time.
        Filtered lists read the query tables (``certificates_by_authority``, ``certificates_by_expiry``)
        for the ids, then the certificates themselves, so revocations show at once."""
        if authority_id is None and expiring_before is None:
            cql = f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates"  # nosec B608 - identifiers are module constants
            rows, next_token = await self._page("certificate_list", cql, (), limit, page_token)
            return [_certificate(row, now) for row in rows], next_token
        if authority_id is not None:
            if expiring_before is None:
                ids, next_token = await self._page(
                    "certificate_list", _BY_AUTHORITY, (authority_id,), limit, page_token
                )
            else:
                params = (authority_id, now, expiring_before)
                ids, next_token = await self._page(
                    "certificate_list", _BY_AUTHORITY_EXPIRING, params, limit, page_token
                )
        else:
            assert expiring_before is not None  # nosec B101 - narrowed by the branches above
            ids, next_token = await self._expiring(now, expiring_before, limit, page_token)
        return await self._certificates_by_id([row["id"] for row in ids], now), next_token

    async def _expiring(
        self, now: datetime, before: datetime, limit: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Ids of certificates valid now and expiring by ``before``, month partition after month partition
        of the ones that hold any (``certificate_expiry_buckets``). The page token carries the month it
        stopped in and Cassandra's paging state within it."""
        resumed = self._pages.decode(_BY_EXPIRY, page_token)
        start, paging_state = expiry_bucket(now), None
        if resumed is not None:
            start, paging_state = date.fromordinal(int.from_bytes(resumed[:4], "big")), resumed[4:] or None
        listed = await self._db.execute(
            "certificate_list", _BUCKETS, (EXPIRY_BUCKETS_SCOPE, start, expiry_bucket(before))
        )
        buckets = [_as_date(row["bucket"]) for row in listed.current_rows]
        ids: list[dict[str, Any]] = []
        for index, bucket in enumerate(buckets):
            state = paging_state if bucket == start else None
            params = (bucket, now, before)
            rows, state = await self._walk("certificate_list", _BY_EXPIRY, params, limit - len(ids), state)
            ids += rows
            if state is not None:
                return ids, self._pages.encode(_BY_EXPIRY, _bucket_state(bucket, state))
            if len(ids) >= limit:
                more = index + 1 < len(buckets)
                return ids, self._pages.encode(_BY_EXPIRY, _bucket_state(buckets[index + 1], b"")) if more else None
        return ids, None

    async def _certificates_by_id(self, ids: list[UUID], now: datetime) -> list[Certificate]:
        results = await asyncio.gather(*(self._db.execute("certificate_get", _SELECT_CERTIFICATE, (i,)) for i in ids))
        return [_certificate(row, now) for result in results if (row := result.one()) is not None]

    async def revoke(self, certificate_id: UUID, at: datetime, actor: str, reason: str) -> bool:
        """Marks a certificate revoked unless it already is; returns whether this call revoked it.
        (A conditional update cannot share a batch with another table, so the audit entry follows it.)"""
        result = await self._db.execute(
            "certificate_revoke",
            "UPDATE certificates SET revoked_at = ?, revoked_by = ?, revocation_reason = ? WHERE id = ? "
            "IF revoked_at = null",
            (at, actor, reason, certificate_id),
        )
        if not result.one()["[applied]"]:
            return False
        cql, params = self._audit(at, actor, "certificate.revoke", "certificate", certificate_id, {"reason": reason})
        await self._db.execute("audit_append", cql, params)
        return True

    async def audit(self, day: date, limit: int, page_token: str | None) -> tuple[list[AuditEvent], str | None]:
        cql = "SELECT at, actor, action, target_type, target_id, details FROM audit_log WHERE day = ?"
        rows, next_token = await self._page("audit_list", cql, (day,), limit, page_token)
        events = [
            AuditEvent(
                at=datetime_from_uuid1(row["at"]).replace(tzinfo=UTC),
                actor=row["actor"],
                action=row["action"],
                target_type=row["target_type"],
                target_id=row["target_id"],
                details=row["details"] or {},
            )
            for row in rows
        ]
        return events, next_token


def _authority(row: dict[str, Any]) -> Authority:
    return Authority(
        **{**row, **{k: _utc(row[k]) for k in ("not_before", "not_after", "created_at")}},
    )


def _certificate(row: dict[str, Any], now: datetime) -> Certificate:
    times = {k: _utc(row[k]) for k in ("not_before", "not_after", "created_at", "revoked_at")}
    return Certificate(
        **{**row, **times, "dns_names": row["dns_names"] or [], "ip_addresses": row["ip_addresses"] or []},
        status=_status(row, now),
    )


def _bucket_state(month: date, paging_state: bytes) -> bytes:
    return month.toordinal().to_bytes(4, "big") + paging_state


def _as_date(value: Any) -> date:
    """A CQL date as the driver returns it (``cassandra.util.Date``) as a ``datetime.date``."""
    return value if isinstance(value, date) else value.date()


def _marks(count: int) -> str:
    return ", ".join("?" * count)
