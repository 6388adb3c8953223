"""The API's request and response bodies (also what the store returns)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, StringConstraints, WithJsonSchema, model_validator

from csm.ca import CertificateKind, KeyAlgorithm

_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
_HOSTNAME = r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"

CommonName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PRINTABLE)]
DnsName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=_HOSTNAME)]
IpAddress = Annotated[
    IPvAnyAddress,
    WithJsonSchema({"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}),
]
RevocationReason = Literal[
    "unspecified",
    "key_compromise",
    "ca_compromise",
    "affiliation_changed",
    "superseded",
    "cessation_of_operation",
    "certificate_hold",
    "privilege_withdrawn",
]
CertificateStatus = Literal["valid", "expired", "revoked"]
MAX_SANS = 100
# The names are stored twice in one Cassandra batch (the list and inside the certificate PEM, base64):
# 8 KiB of names keeps that batch far below Cassandra's batch_size_fail_threshold (50 KiB by default).
MAX_DNS_NAMES_CHARS = 8192


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthorityCreate(_Request):
    name: CommonName = Field(description="the authority's common name")
    key_algorithm: KeyAlgorithm = "ecdsa-p256"
    validity_days: int = Field(3650, ge=1, description="at most the service's ca_max_validity_days")


class Authority(BaseModel):
    id: UUID
    name: str
    key_algorithm: str
    serial_number: str = Field(description="hexadecimal")
    not_before: datetime
    not_after: datetime
    certificate_pem: str
    created_at: datetime
    created_by: str


class AuthorityList(BaseModel):
    items: list[Authority]


class CertificateIssue(_Request):
    authority_id: UUID
    kind: CertificateKind = Field("node", description="node: server and client auth; client: client auth")
    common_name: CommonName | None = Field(None, description="defaults to the CSR's")
    dns_names: list[DnsName] = Field([], max_length=MAX_SANS, description="defaults to the CSR's")
    ip_addresses: list[IpAddress] = Field([], max_length=MAX_SANS, description="defaults to the CSR's")
    validity_days: int = Field(90, ge=1, description="at most the service's max_validity_days")
    csr_pem: str | None = Field(None, max_length=16384, description="PEM CSR; without one the service makes the key")
    key_algorithm: KeyAlgorithm | None = Field(None, description="for a service-made key; ecdsa-p256 if not given")

    @model_validator(mode="after")
    def _names_fit(self) -> CertificateIssue:
        if sum(len(name) for name in self.dns_names) > MAX_DNS_NAMES_CHARS:
            raise ValueError(f"dns_names together must be at most {MAX_DNS_NAMES_CHARS} characters")
        return self


class Certificate(BaseModel):
    id: UUID
    authority_id: UUID
    kind: CertificateKind
    serial_number: str = Field(description="hexadecimal")
    common_name: str | None
    dns_names: list[str]
    ip_addresses: list[str]
    key_algorithm: str
    not_before: datetime
    not_after: datetime
    certificate_pem: str
    status: CertificateStatus
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revocation_reason: RevocationReason | None = None


class IssuedCertificate(Certificate):
    ca_certificate_pem: str
    private_key_pem: str | None = Field(
        description="PKCS#8 PEM of the service-made key, returned this once and never stored; null for a CSR"
    )


class CertificatePage(BaseModel):
    items: list[Certificate]
    next_page_token: str | None = Field(description="pass as page_token for the next page; null on the last")


class RevokeRequest(_Request):
    reason: RevocationReason = "unspecified"


class AuditEvent(BaseModel):
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, str]


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_page_token: str | None


class Problem(BaseModel):
    """Every error response other than request validation (422)."""

    detail: str


class Check(BaseModel):
    status: Literal["ok", "failing"]
    latency_ms: float | None
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "failing"]
    checks: dict[str, Check]


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    reason: str | None = None
    checked_at: datetime | None


class Info(BaseModel):
    name: str
    version: str
    git_commit: str
    build_date: str
    python_version: str
    architecture: str
    uptime_seconds: float
    config: dict[str, object]
