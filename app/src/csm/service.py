"""The certificate authority's use cases: crypto from ``csm.ca``, persistence from ``csm.store``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from csm import ca
from csm.models import (
    AuditEvent,
    Authority,
    AuthorityCreate,
    Certificate,
    CertificateIssue,
    IssuedCertificate,
    RevocationReason,
)
from csm.store import Repository


class NotFound(LookupError):
    """No such authority or certificate."""


class Conflict(Exception):
    """The request contradicts the current state (e.g. revoking a revoked certificate)."""


def utc_now() -> datetime:
    """Now, to the millisecond that Cassandra timestamps keep."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _serial(number: int) -> str:
    return f"{number:X}"


class CertificateAuthorityService:
    def __init__(
        self, repository: Repository, master_key: bytes, max_validity_days: int, ca_max_validity_days: int
    ) -> None:
        self._repository = repository
        self._master_key = master_key
        self._max_validity = max_validity_days
        self._ca_max_validity = ca_max_validity_days

    async def create_authority(self, request: AuthorityCreate, actor: str) -> Authority:
        if request.validity_days > self._ca_max_validity:
            raise ca.CertificateRequestError(f"validity_days must be at most {self._ca_max_validity}")
        now = utc_now()
        authority_id = uuid.uuid4()
        key = await asyncio.to_thread(ca.generate_key, request.key_algorithm)
        certificate = ca.create_authority(request.name, key, timedelta(days=request.validity_days), now)
        authority = Authority(
            id=authority_id,
            name=request.name,
            key_algorithm=request.key_algorithm,
            serial_number=_serial(certificate.serial_number),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            certificate_pem=ca.certificate_pem(certificate),
            created_at=now,
            created_by=actor,
        )
        await self._repository.add_authority(authority, ca.seal_key(self._master_key, key, authority_id.bytes))
        return authority

    async def authorities(self) -> list[Authority]:
        return await self._repository.authorities()

    async def authority(self, authority_id: UUID) -> Authority:
        found = await self._repository.authority(authority_id)
        if found is None:
            raise NotFound(f"no authority {authority_id}")
        return found[0]

    async def issue(self, request: CertificateIssue, actor: str) -> IssuedCertificate:
        if request.validity_days > self._max_validity:
            raise ca.CertificateRequestError(f"validity_days must be at most {self._max_validity}")
        if request.csr_pem is not None and request.key_algorithm is not None:
            raise ca.CertificateRequestError("give csr_pem or key_algorithm, not both")
        found = await self._repository.authority(request.authority_id)
        if found is None:
            raise NotFound(f"no authority {request.authority_id}")
        authority, sealed_key = found
        authority_key = ca.unseal_key(self._master_key, sealed_key, authority.id.bytes)
        authority_certificate = ca.load_certificate(authority.certificate_pem)

        private_key: ca.PrivateKey | None = None
        if request.csr_pem is not None:
            csr = ca.load_csr(request.csr_pem)
            public_key = csr.public_key()
            asked = ca.csr_subject(csr)
        else:
            private_key = await asyncio.to_thread(ca.generate_key, request.key_algorithm or "ecdsa-p256")
            public_key = private_key.public_key()
            asked = ca.Subject(None)
        subject = ca.Subject(
            request.common_name or asked.common_name,
            tuple(request.dns_names) or asked.dns_names,
            tuple(request.ip_addresses) or asked.ip_addresses,
        )
        now = utc_now()
        certificate = ca.issue(
            authority_certificate,
            authority_key,
            public_key,
            subject,
            request.kind,
            timedelta(days=request.validity_days),
            now,
        )
        record = Certificate(
            id=uuid.uuid4(),
            authority_id=authority.id,
            kind=request.kind,
            serial_number=_serial(certificate.serial_number),
            common_name=subject.common_name,
            dns_names=list(subject.dns_names),
            ip_addresses=[str(ip) for ip in subject.ip_addresses],
            key_algorithm=ca.describe_key(public_key),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            certificate_pem=ca.certificate_pem(certificate),
            status="valid",
            created_at=now,
            created_by=actor,
        )
        await self._repository.add_certificate(record)
        return IssuedCertificate(
            **record.model_dump(),
            ca_certificate_pem=authority.certificate_pem,
            private_key_pem=ca.private_key_pem(private_key) if private_key is not None else None,
        )

    async def certificate(self, certificate_id: UUID) -> Certificate:
        found = await self._repository.certificate(certificate_id, utc_now())
        if found is None:
            raise NotFound(f"no certificate {certificate_id}")
        return found

    async def certificates(
        self, authority_id: UUID | None, expiring_within_days: int | None, limit: int, page_token: str | None
    ) -> tuple[list[Certificate], str | None]:
        now = utc_now()
        expiring_before = now + timedelta(days=expiring_within_days) if expiring_within_days is not None else None
        return await self._repository.certificates(
            now, authority_id=authority_id, expiring_before=expiring_before, limit=limit, page_token=page_token
        )

    async def revoke(self, certificate_id: UUID, reason: RevocationReason, actor: str) -> Certificate:
        await self.certificate(certificate_id)
        if not await self._repository.revoke(certificate_id, utc_now(), actor, reason):
            raise Conflict(f"certificate {certificate_id} is already revoked")
        return await self.certificate(certificate_id)

    async def audit(self, day: date, limit: int, page_token: str | None) -> tuple[list[AuditEvent], str | None]:
        return await self._repository.audit(day, limit, page_token)
