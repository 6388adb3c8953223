"""Queries for authorities, certificates and the append-only audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from cassandra.cluster import ResultSet
from cassandra.util import datetime_from_uuid1, uuid_from_time

from csm.models import AuditEvent, Authority, Certificate, CertificateStatus
from csm.pagination import PageTokens
from csm.store.database import Database

_AUTHORITY_FIELDS = tuple(Authority.model_fields)
_AUTHORITY_COLUMNS = ", ".join(_AUTHORITY_FIELDS)
_CERTIFICATE_FIELDS = tuple(name for name in Certificate.model_fields if name != "status")
_CERTIFICATE_COLUMNS = ", ".join(_CERTIFICATE_FIELDS)
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

    async def _page(
        self, operation: str, cql: str, params: Sequence[Any], limit: int, page_token: str | None
    ) -> tuple[ResultSet, str | None]:
        paging_state = self._pages.decode(cql, page_token)
        rows = await self._db.execute(operation, cql, params, fetch_size=limit, paging_state=paging_state)
        return rows, self._pages.encode(cql, rows.paging_state)

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
            "authority_get", f"SELECT {_AUTHORITY_COLUMNS}, sealed_key FROM authorities WHERE id = ?", (authority_id,)  # nosec B608 - identifiers are module constants; values are bound parameters
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
        await self._db.execute_batch("certificate_issue", [insert, audit])

    async def certificate(self, certificate_id: UUID, now: datetime) -> Certificate | None:
        rows = await self._db.execute(
            "certificate_get", f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates WHERE id = ?", (certificate_id,)  # nosec B608 - identifiers are module constants; values are bound parameters
        )
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
        """A page of certificates, optionally of one authority and/or valid now but expiring before a time."""
        conditions: list[str] = []
        params: list[Any] = []
        if authority_id is not None:
            conditions.append("authority_id = ?")
            params.append(authority_id)
        if expiring_before is not None:
            conditions += ["not_after > ?", "not_after <= ?"]
            params += [now, expiring_before]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        cql = f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates{where}"  # nosec B608 - identifiers are module constants; values are bound parameters
        rows, next_token = await self._page("certificate_list", cql, params, limit, page_token)
        return [_certificate(row, now) for row in rows.current_rows], next_token

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
            for row in rows.current_rows
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


def _marks(count: int) -> str:
    return ", ".join("?" * count)
