"""Throwaway certificates for CA-certificate login tests: a test CA and a leaf it signed.

RSA key generation is the slow part, so generate() caches per email.
"""

from __future__ import annotations

import datetime
import functools
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

KEY_SIZE = 2048


class CertBundle(NamedTuple):
    """PEM texts, as a scenario's users[].certificates and a client's key file hold them."""

    ca_cert_pem: str
    leaf_cert_pem: str
    leaf_key_pem: str


@functools.cache
def generate(email: str = "integration@example.com") -> CertBundle:
    """A CA certificate and a leaf for `email` valid from yesterday for 30 days."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    ca_name = _name("Simulator Test CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    leaf_cert = (
        _builder(_name(email), ca_name, leaf_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return CertBundle(_pem(ca_cert), _pem(leaf_cert), key_pem.decode("ascii"))


def sign(key_pem: str, data: bytes) -> bytes:
    """SHA512withRSA (PKCS#1 v1.5) over the raw bytes, as Anaplan clients sign encodedData."""
    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA512())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
