"""Checks a CA-certificate login the way Anaplan's auth service is documented to.

Kept apart from auth.py so the token bookkeeping there stays free of X.509 details.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

V1_MIN_RANDOM_BYTES = 100  # "at least 100 bytes" (Apiary text)
V2_MIN_RANDOM_BYTES = 64  # what the server is reported to need after the timestamp
TIMESTAMP_BYTES = 8
MAX_CLOCK_SKEW_S = 300.0
_MILLISECONDS_THRESHOLD = 10**11  # larger epoch values can only be milliseconds


class CertificateError(Exception):
    """A certificate login is refused: 400 for an unreadable header, 401 for anything else."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def fingerprint(certificate: x509.Certificate) -> str:
    """Identify a certificate by its DER bytes, so PEM formatting differences don't matter."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def certificate_from_pem(pem: object) -> x509.Certificate:
    """A certificate as a scenario or the control API gives it: PEM text."""
    try:
        if not isinstance(pem, str):
            raise TypeError(pem)
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise CertificateError(400, "not a PEM certificate") from exc


def certificate_from_header(credentials: str) -> x509.Certificate:
    """Decode `CACertificate <B>`: B is base64 of the PEM text (tolerate base64 of DER)."""
    raw = _b64decode(credentials, "the CACertificate header", status=400)
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise CertificateError(400, "The CACertificate header holds no X.509 certificate") from exc


def verify_login(certificate: x509.Certificate, payload: Mapping[str, Any], now: float) -> None:
    """Raise CertificateError unless the payload proves possession of the certificate's key."""
    _check_validity_period(certificate, now)
    data = _b64decode(_field(payload, "encodedData"), "encodedData", status=401)
    signature = _b64decode(_field(payload, "encodedSignedData"), "encodedSignedData", status=401)
    data_format = str(payload.get("encodedDataFormat") or "v1").lower()
    if data_format == "v1":
        _check_random_length(data, V1_MIN_RANDOM_BYTES)
    elif data_format == "v2":
        _check_random_length(data[TIMESTAMP_BYTES:], V2_MIN_RANDOM_BYTES)
        _check_timestamp(data[:TIMESTAMP_BYTES], now)
    else:
        raise CertificateError(401, f"Unknown encodedDataFormat {data_format!r}; use v1 or v2")
    _check_signature(certificate, data, signature)


def _field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise CertificateError(401, f"The request body must carry {name}")
    return value


def _b64decode(text: str, what: str, status: int) -> bytes:
    """Decode strictly, but ignore whitespace (MIME encoders wrap their lines)."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateError(status, f"{what} is not valid base64") from exc


def _check_validity_period(certificate: x509.Certificate, now: float) -> None:
    not_before = certificate.not_valid_before_utc.timestamp()
    not_after = certificate.not_valid_after_utc.timestamp()
    if not not_before <= now <= not_after:
        raise CertificateError(401, "The certificate is expired or not yet valid")


def _check_random_length(random_part: bytes, minimum: int) -> None:
    if len(random_part) < minimum:
        raise CertificateError(
            401, f"encodedData holds {len(random_part)} random bytes; at least {minimum} needed"
        )


def _check_timestamp(stamp: bytes, now: float) -> None:
    """v2 data starts with a big-endian epoch timestamp; sources disagree on s vs ms."""
    value = int.from_bytes(stamp, "big")
    seconds = value / 1000 if value >= _MILLISECONDS_THRESHOLD else float(value)
    if abs(seconds - now) > MAX_CLOCK_SKEW_S:
        raise CertificateError(
            401, "The encodedData timestamp is more than 5 minutes away from the server time"
        )


def _check_signature(certificate: x509.Certificate, data: bytes, signature: bytes) -> None:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateError(401, "The certificate does not hold an RSA public key")
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA512())
    except InvalidSignature as exc:
        raise CertificateError(
            401, "encodedSignedData is not a SHA512withRSA signature of encodedData by this key"
        ) from exc
