"""Signed CAP messages (issue 18 §6): an enveloped XML signature on every CAP ``alert``.

CAP 1.2 §3.3.2.1 lets the ``alert`` element carry an enveloped XML-Signature (W3C XML-DSig)
so a receiver can tell the sender's messages from forgeries; the CAP schema admits it as the
``##other``-namespace element after the last ``info``. What we produce:

* ``ds:Signature`` as the last child of ``alert``, ``Reference URI=""`` (the whole message)
  with the enveloped-signature transform;
* exclusive canonicalization (``xml-exc-c14n#``), RSA-SHA256 over SHA-256 digests;
* ``KeyInfo/X509Data`` holding our certificate. Receivers must verify against the certificate
  they got from us out of band (``GET /api/cap/certificate.pem``, or an operator's copy), not
  against the one inside the message — anybody can embed a certificate.

The XML-DSig work (canonicalization, digests, signature layout) is signxml's, a maintained
library over lxml and cryptography: hand-rolled canonicalization is where signature bugs live.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner, methods

EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
KEY_FILE: Final = "cap-signing-key.pem"
CERT_FILE: Final = "cap-signing-cert.pem"


class SigningKeyError(Exception):
    """The configured key or certificate cannot be used; the message says which and why."""


@dataclass(frozen=True)
class CapSigner:
    """A private key and its certificate, checked to belong together when loaded."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def from_files(cls, key_file: Path, cert_file: Path) -> CapSigner:
        try:
            key_pem, cert_pem = key_file.read_bytes(), cert_file.read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"cannot read {exc.filename}: {exc.strerror}") from None
        return cls.from_pem(key_pem, cert_pem, f"{key_file} / {cert_file}")

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, where: str = "PEM") -> CapSigner:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"{where}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
            raise SigningKeyError(f"{where}: the CAP signing key must be RSA, 2048 bits or more")
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise SigningKeyError(f"{where}: not a PEM X.509 certificate ({exc})") from None
        public = cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey) or (
            public.public_numbers() != key.public_key().public_numbers()
        ):
            raise SigningKeyError(f"{where}: the certificate is not the key's")
        return cls(key, cert)

    def sign(self, cap_xml: bytes) -> bytes:
        """The same message with its enveloped ``ds:Signature``, serialised once: any
        re-formatting after this point would break the signature."""
        doc = etree.fromstring(cap_xml, parser=etree.XMLParser(resolve_entities=False))
        signer = XMLSigner(
            method=methods.enveloped,
            signature_algorithm="rsa-sha256",
            digest_algorithm="sha256",
            c14n_algorithm=EXC_C14N,
        )
        cert = self.certificate_pem.decode("ascii")
        signed = signer.sign(doc, key=self.key, cert=cert)
        out: bytes = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
        return out


def self_signed(common_name: str, days: int, key_size: int = 3072) -> tuple[bytes, bytes]:
    """A new RSA key and a self-signed certificate for it (PEM key, PEM certificate): enough
    for the demo and for receivers that pin our certificate; production may use a CA's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GeoRisk CAP signing"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def write_key_pair(out_dir: Path, common_name: str, days: int) -> tuple[Path, Path]:
    """Write a new pair into ``out_dir``; the key is created 0600 (never world-readable)."""
    key_pem, cert_pem = self_signed(common_name, days)
    out_dir.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = out_dir / KEY_FILE, out_dir / CERT_FILE
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    os.chmod(key_path, 0o600)  # O_CREAT's mode applies to new files only
    cert_path.write_bytes(cert_pem)
    return key_path, cert_path
