"""Certificate authority work: keys, self-signed authorities, issuing from CSRs or generated keys,
and sealing CA keys with AES-256-GCM under the master key. Pure functions, no I/O."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyAlgorithm = Literal["ecdsa-p256", "rsa-3072", "ed25519"]
KEY_ALGORITHMS: tuple[str, ...] = get_args(KeyAlgorithm)
CertificateKind = Literal["node", "client"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MIN_RSA_BITS = 2048
CLOCK_SKEW = timedelta(minutes=5)
_SEAL_VERSION = b"\x01"
_NONCE_BYTES = 12
_EC_CURVES = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}


class CertificateRequestError(ValueError):
    """The request cannot be honoured as asked (bad CSR, unsupported key, validity too long ...)."""


class SealError(Exception):
    """A sealed CA key cannot be opened with the configured master key."""


@dataclass(frozen=True)
class Subject:
    common_name: str | None
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()


def generate_key(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ed25519.Ed25519PrivateKey.generate()


def describe_key(key: PublicKey | CertificatePublicKeyTypes) -> str:
    """A short name for a public key, e.g. ``ecdsa-p256``; raises for keys this CA will not certify."""
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_CURVES:
        return _EC_CURVES[key.curve.name]
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return f"rsa-{key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    raise CertificateRequestError(
        f"unsupported public key: use ECDSA P-256/P-384, RSA of at least {MIN_RSA_BITS} bits, or Ed25519"
    )


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def create_authority(name: str, key: PrivateKey, validity: timedelta, now: datetime) -> x509.Certificate:
    """A self-signed root CA certificate named ``name``."""
    subject = _name(name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, _signature_hash(key))
    )


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """Parses a PEM CSR and checks its self-signature and key."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
        signature_ok = csr.is_signature_valid
        public_key = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertificateRequestError("csr_pem is not a valid PEM certificate signing request") from None
    if not signature_ok:
        raise CertificateRequestError("csr_pem's signature does not verify")
    describe_key(public_key)
    return csr


def csr_subject(csr: x509.CertificateSigningRequest) -> Subject:
    """The common name and SANs a CSR asks for."""
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else None
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return Subject(common_name)
    except ValueError:
        raise CertificateRequestError("csr_pem has malformed extensions") from None
    addresses = sans.get_values_for_type(x509.IPAddress)
    hosts = tuple(a for a in addresses if isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address))
    if len(hosts) != len(addresses):
        raise CertificateRequestError("csr_pem asks for an IP network; only IP addresses can be certified")
    return Subject(common_name, tuple(sans.get_values_for_type(x509.DNSName)), hosts)


def issue(
    authority: x509.Certificate,
    authority_key: PrivateKey,
    public_key: PublicKey | CertificatePublicKeyTypes,
    subject: Subject,
    kind: CertificateKind,
    validity: timedelta,
    now: datetime,
) -> x509.Certificate:
    """A node (server + client auth) or client certificate for ``public_key``, signed by ``authority``."""
    describe_key(public_key)
    if not (subject.common_name or subject.dns_names or subject.ip_addresses):
        raise CertificateRequestError("give a common_name, dns_names or ip_addresses")
    not_after = now + validity
    if not_after > authority.not_valid_after_utc:
        raise CertificateRequestError(
            f"validity would outlast the authority, which expires {authority.not_valid_after_utc.isoformat()}"
        )
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if kind == "node":
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    authority_ski = authority.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .issuer_name(authority.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(authority_ski), critical=False)
    )
    try:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in subject.dns_names]
        sans += [x509.IPAddress(ip) for ip in subject.ip_addresses]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=not subject.common_name)
        return builder.subject_name(_name(subject.common_name)).sign(authority_key, _signature_hash(authority_key))
    except ValueError as error:  # names the CSR carried that X.509 cannot hold
        raise CertificateRequestError(f"cannot issue this certificate: {error}") from None


def _name(common_name: str | None) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def load_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def private_key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def seal_key(master_key: bytes, key: PrivateKey, context: bytes) -> bytes:
    """Encrypts ``key`` (PKCS#8 DER) with AES-256-GCM; ``context`` (e.g. the authority id) is bound as AAD."""
    plaintext = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    nonce = os.urandom(_NONCE_BYTES)
    return _SEAL_VERSION + nonce + AESGCM(master_key).encrypt(nonce, plaintext, context)


def unseal_key(master_key: bytes, sealed: bytes, context: bytes) -> PrivateKey:
    if sealed[:1] != _SEAL_VERSION:
        raise SealError("unknown sealed-key format")
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        plaintext = AESGCM(master_key).decrypt(nonce, ciphertext, context)
    except InvalidTag:
        raise SealError("the authority's key does not open with the configured master key") from None
    key = serialization.load_der_private_key(plaintext, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise SealError("the sealed key is of an unsupported type")
    return key
