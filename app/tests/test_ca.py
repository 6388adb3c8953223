"""Certificate authority work with real cryptography: keys, authorities, issuing, sealing."""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csm import ca

NOW = datetime(2030, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def verify_signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> None:
    key = issuer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            padding.PKCS1v15(),
            certificate.signature_hash_algorithm,
        )  # type: ignore[arg-type]
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(
            certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(certificate.signature_hash_algorithm)
        )  # type: ignore[arg-type]
    else:
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(certificate.signature, certificate.tbs_certificate_bytes)


@pytest.fixture(scope="module")
def authority() -> tuple[x509.Certificate, ca.PrivateKey]:
    key = ca.generate_key("ecdsa-p256")
    return ca.create_authority("Test Root", key, 10 * YEAR, NOW), key


@pytest.mark.parametrize(
    ("algorithm", "key_type"),
    [
        ("ecdsa-p256", ec.EllipticCurvePrivateKey),
        ("rsa-3072", rsa.RSAPrivateKey),
        ("ed25519", ed25519.Ed25519PrivateKey),
    ],
)
def test_authority_of_each_algorithm_is_a_self_signed_ca(algorithm: ca.KeyAlgorithm, key_type: type) -> None:
    key = ca.generate_key(algorithm)
    assert isinstance(key, key_type)
    assert ca.describe_key(key.public_key()) == algorithm
    certificate = ca.create_authority("Root " + algorithm, key, YEAR, NOW)
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert certificate.subject == certificate.issuer
    assert certificate.not_valid_after_utc == NOW + YEAR
    verify_signed_by(certificate, certificate)


def test_node_certificate_for_a_generated_key(authority: tuple[x509.Certificate, ca.PrivateKey]) -> None:
    root, root_key = authority
    key = ca.generate_key("ed25519")
    subject = ca.Subject("node1", ("node1.db.example", "*.db.example"), (ipaddress.ip_address("10.0.0.7"),))
    certificate = ca.issue(root, root_key, key.public_key(), subject, "node", 90 * timedelta(days=1), NOW)
    verify_signed_by(certificate, root)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node1"
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["node1.db.example", "*.db.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    usages = list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certificate.not_valid_after_utc == NOW + timedelta(days=90)
    assert certificate.issuer == root.subject


def test_client_certificate_is_for_client_auth_only(authority: tuple[x509.Certificate, ca.PrivateKey]) -> None:
    root, root_key = authority
    key = ca.generate_key("rsa-3072")
    certificate = ca.issue(root, root_key, key.public_key(), ca.Subject("app"), "client", YEAR, NOW)
    usages = list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


def make_csr(key: ca.PrivateKey, common_name: str | None, dns: list[str]) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def test_csr_gives_key_and_names(authority: tuple[x509.Certificate, ca.PrivateKey]) -> None:
    root, root_key = authority
    key = ec.generate_private_key(ec.SECP384R1())
    csr = ca.load_csr(make_csr(key, "cass-2", ["cass-2.example"]))
    asked = ca.csr_subject(csr)
    assert asked == ca.Subject("cass-2", ("cass-2.example",), ())
    certificate = ca.issue(root, root_key, csr.public_key(), asked, "node", YEAR, NOW)
    assert certificate.public_key() == key.public_key()
    assert ca.describe_key(certificate.public_key()) == "ecdsa-p384"


@pytest.mark.parametrize(
    "pem",
    ["", "hello", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"],
)
def test_garbage_csr_is_refused(pem: str) -> None:
    with pytest.raises(ca.CertificateRequestError, match="not a valid PEM"):
        ca.load_csr(pem)


def test_csr_with_a_broken_signature_is_refused() -> None:
    pem = make_csr(ca.generate_key("ecdsa-p256"), "x", [])
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(ca.CertificateRequestError):
        ca.load_csr(tampered)


def test_weak_rsa_key_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # nosec B505 - weak on purpose
    with pytest.raises(ca.CertificateRequestError, match="unsupported public key"):
        ca.load_csr(make_csr(weak, "weak", []))


def test_validity_past_the_authority_is_refused(authority: tuple[x509.Certificate, ca.PrivateKey]) -> None:
    root, root_key = authority
    with pytest.raises(ca.CertificateRequestError, match="outlast the authority"):
        ca.issue(root, root_key, ca.generate_key("ecdsa-p256").public_key(), ca.Subject("x"), "node", 11 * YEAR, NOW)


def test_a_subject_needs_a_name(authority: tuple[x509.Certificate, ca.PrivateKey]) -> None:
    root, root_key = authority
    with pytest.raises(ca.CertificateRequestError, match="common_name"):
        ca.issue(root, root_key, ca.generate_key("ecdsa-p256").public_key(), ca.Subject(None), "node", YEAR, NOW)


def test_sans_only_certificate_marks_them_critical(authority: tuple[x509.Certificate, ca.PrivateKey]) -> None:
    root, root_key = authority
    subject = ca.Subject(None, ("only.example",))
    certificate = ca.issue(root, root_key, ca.generate_key("ecdsa-p256").public_key(), subject, "node", YEAR, NOW)
    assert certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    assert len(certificate.subject) == 0


def test_sealed_key_opens_only_with_its_master_key_and_context() -> None:
    master = os.urandom(32)
    key = ca.generate_key("ecdsa-p256")
    sealed = ca.seal_key(master, key, b"authority-1")
    plaintext = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert plaintext not in sealed
    opened = ca.unseal_key(master, sealed, b"authority-1")
    assert opened.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    with pytest.raises(ca.SealError):
        ca.unseal_key(os.urandom(32), sealed, b"authority-1")
    with pytest.raises(ca.SealError):
        ca.unseal_key(master, sealed, b"authority-2")
    with pytest.raises(ca.SealError):
        ca.unseal_key(master, b"\x02" + sealed[1:], b"authority-1")


def test_two_seals_of_one_key_differ() -> None:
    master, key = os.urandom(32), ca.generate_key("ed25519")
    assert ca.seal_key(master, key, b"a") != ca.seal_key(master, key, b"a")


def test_private_key_pem_is_pkcs8() -> None:
    pem = ca.private_key_pem(ca.generate_key("rsa-3072"))
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert isinstance(serialization.load_pem_private_key(pem.encode(), None), rsa.RSAPrivateKey)
