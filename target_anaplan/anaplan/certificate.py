"""CA certificate login (``POST /token/authenticate`` with a ``CACertificate`` header).

The caller proves it holds the certificate's private key by signing fresh random bytes
(SHA512withRSA). Format v2, Anaplan's newer one, prefixes an 8-byte big-endian
timestamp in seconds so a signed body cannot be replayed later; v1 is random bytes only.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from target_anaplan.anaplan.auth import (
    Timeout,
    Token,
    TokenAuth,
    post_token_service,
    refresh_token_service,
    token_from_response,
)
from target_anaplan.anaplan.errors import AuthenticationError, anaplan_message

logger = logging.getLogger(__name__)

RANDOM_BYTES = 150
DATA_FORMATS = ("v1", "v2")
_PEM_MARKER = "-----BEGIN"
_MAX_SHOWN_PATH = 255


def load_certificate(value: str) -> x509.Certificate:
    """The certificate in ``value``: PEM text, or the path of a PEM or DER file."""
    raw = _material(value, "certificate")
    try:
        if raw.lstrip().startswith(_PEM_MARKER.encode()):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        raise AuthenticationError(
            "The certificate setting holds no readable X.509 certificate; give the PEM text "
            "or the path of a PEM or DER certificate file."
        ) from None


def load_private_key(value: str, passphrase: str | None) -> rsa.RSAPrivateKey:
    """The RSA key in ``value`` (PEM text, or a PEM/DER file path), decrypted if need be."""
    raw = _material(value, "private_key")
    password = passphrase.encode() if passphrase else None
    loader = (
        serialization.load_pem_private_key
        if raw.lstrip().startswith(_PEM_MARKER.encode())
        else serialization.load_der_private_key
    )
    try:
        key = loader(raw, password=password)
    except TypeError:
        hint = (
            "it is encrypted; set private_key_passphrase"
            if password is None
            else "it is not encrypted; remove private_key_passphrase"
        )
        raise AuthenticationError(f"private_key could not be loaded: {hint}.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise AuthenticationError(
            "private_key could not be loaded: it is not a PEM or DER private key, or "
            "private_key_passphrase is wrong."
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthenticationError(
            "private_key must be an RSA key (Anaplan signs with SHA512withRSA)."
        )
    return key


def _material(value: str, setting: str) -> bytes:
    """PEM text as given, or the bytes of the file it names (the text is never echoed)."""
    if _PEM_MARKER in value:
        return value.encode()
    path = Path(value.strip()).expanduser()
    try:
        return path.read_bytes()
    except (OSError, ValueError) as error:
        shown = f" {value.strip()!r}" if len(value) <= _MAX_SHOWN_PATH and "\n" not in value else ""
        reason = getattr(error, "strerror", None) or "not a file path"
        raise AuthenticationError(
            f"The {setting} setting is neither PEM text nor a readable file{shown} ({reason})."
        ) from None


def certificate_header(certificate: x509.Certificate) -> str:
    """``CACertificate`` + base64 of the certificate's PEM text (BEGIN/END lines included)."""
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    return f"CACertificate {base64.b64encode(pem).decode('ascii')}"


def signed_login_body(key: rsa.RSAPrivateKey, data_format: str, now: float) -> dict[str, str]:
    """The JSON body of a certificate login: fresh data and its SHA512withRSA signature."""
    data = os.urandom(RANDOM_BYTES)
    if data_format == "v2":
        data = int(now).to_bytes(8, "big") + data
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA512())
    body = {
        "encodedData": base64.b64encode(data).decode("ascii"),
        "encodedSignedData": base64.b64encode(signature).decode("ascii"),
    }
    if data_format == "v2":
        body["encodedDataFormat"] = "v2"
    return body


class CertificateAuth(TokenAuth):
    """Logs in with a CA certificate and its private key, then refreshes the token."""

    def __init__(
        self,
        session: requests.Session,
        auth_base_url: str,
        *,
        certificate: str,
        private_key: str,
        passphrase: str | None = None,
        data_format: str = "v2",
        clock: Callable[[], float] = time.time,
        timeout_s: Timeout = 60.0,
    ) -> None:
        super().__init__(clock=clock)
        if data_format not in DATA_FORMATS:
            raise AuthenticationError(
                f"certificate_data_format {data_format!r} is not supported; use 'v2' or 'v1'."
            )
        self._session = session
        self._auth_base_url = auth_base_url.rstrip("/")
        self._certificate = load_certificate(certificate)
        self._key = load_private_key(private_key, passphrase)
        self._data_format = data_format
        self._timeout_s = timeout_s
        if self._key.public_key().public_numbers() != _public_numbers(self._certificate):
            raise AuthenticationError(
                f"private_key does not belong to the certificate ({self._subject()}); "
                "configure the key the certificate was issued for."
            )

    def __repr__(self) -> str:
        return f"CertificateAuth(certificate={self._subject()!r})"

    def _obtain(self) -> Token:
        response = post_token_service(
            self._session,
            f"{self._auth_base_url}/token/authenticate",
            headers={"Authorization": certificate_header(self._certificate)},
            json=signed_login_body(self._key, self._data_format, self._clock()),
            timeout_s=self._timeout_s,
        )
        if not response.ok:
            raise AuthenticationError(self._refusal(response))
        logger.info("Logged in to Anaplan with certificate %s", self._subject())
        return token_from_response(response, now=self._clock())

    def _renew(self, token: Token) -> Token:
        renewed = refresh_token_service(
            self._session, self._auth_base_url, token, timeout_s=self._timeout_s, now=self._clock()
        )
        return renewed or self._obtain()

    def _subject(self) -> str:
        return self._certificate.subject.rfc4514_string()

    def _refusal(self, response: requests.Response) -> str:
        detail = anaplan_message(response)
        detail = f" ({detail})" if detail else ""
        return (
            f"Anaplan refused the certificate login for {self._subject()} with HTTP "
            f"{response.status_code}{detail}. Check that the certificate comes from a public CA, "
            "is registered for the user in Anaplan Administration, has not expired, and that "
            f"certificate_data_format ({self._data_format}) is accepted by your tenant."
        )


def _public_numbers(certificate: x509.Certificate) -> Any:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AuthenticationError("The certificate must hold an RSA public key.")
    return key.public_numbers()
