"""CA certificate login: key loading, the signed body (v1/v2), the header, clear errors."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from target_anaplan.anaplan.certificate import (
    CertificateAuth,
    certificate_header,
    load_certificate,
    load_private_key,
    signed_login_body,
)
from target_anaplan.anaplan.errors import AuthenticationError

NOW = 1_800_000_000.0
PASSPHRASE = "passphrase-4b1d"


def _self_signed(key: Any, name: str = "unit@example.com") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def cert_pem(key) -> str:
    return _self_signed(key).public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: Any, passphrase: str | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def _verify(key: rsa.RSAPrivateKey, body: dict[str, str]) -> bytes:
    data = base64.b64decode(body["encodedData"])
    signature = base64.b64decode(body["encodedSignedData"])
    key.public_key().verify(signature, data, padding.PKCS1v15(), hashes.SHA512())  # raises if bad
    return data


def test_v2_body_is_timestamp_then_random_bytes_signed_sha512_rsa(key):
    body = signed_login_body(key, "v2", NOW)
    data = _verify(key, body)
    assert body["encodedDataFormat"] == "v2"
    assert len(data) == 8 + 150
    assert int.from_bytes(data[:8], "big") == int(NOW)


def test_v1_body_is_random_bytes_only(key):
    body = signed_login_body(key, "v1", NOW)
    assert "encodedDataFormat" not in body
    assert len(_verify(key, body)) == 150
    assert signed_login_body(key, "v1", NOW)["encodedData"] != body["encodedData"]


def test_header_is_base64_of_the_pem_text(cert_pem):
    header = certificate_header(load_certificate(cert_pem))
    scheme, value = header.split(" ")
    assert scheme == "CACertificate"
    assert base64.b64decode(value).decode() == cert_pem


def test_certificate_and_key_load_from_paths_pem_or_der(tmp_path, key, cert_pem):
    der = tmp_path / "cert.der"
    der.write_bytes(load_certificate(cert_pem).public_bytes(serialization.Encoding.DER))
    pem_key = tmp_path / "key.pem"
    pem_key.write_text(_key_pem(key, PASSPHRASE))
    assert load_certificate(str(der)) == load_certificate(cert_pem)
    loaded = load_private_key(str(pem_key), PASSPHRASE)
    assert loaded.private_numbers() == key.private_numbers()


class FakeAuthHost:
    """Records the login request and answers with a token envelope."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.calls: list[tuple[str, dict[str, str], Any]] = []

    def post(self, url: str, *, headers: dict[str, str], json: Any, timeout: float):
        self.calls.append((url, headers, json))
        response = requests.Response()
        response.status_code = self.status
        body = (
            {"tokenInfo": {"tokenValue": "tok", "expiresAt": int((NOW + 2100) * 1000)}}
            if self.status < 300
            else {"status": "FAILURE_BAD_CREDENTIAL", "statusMessage": "Not registered"}
        )
        response._content = _dumps(body)
        return response


def _dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


def _auth(session: Any, cert: str, key: str, **kwargs: Any) -> CertificateAuth:
    return CertificateAuth(session, "https://auth.example/", certificate=cert, private_key=key,
                           clock=lambda: NOW, **kwargs)  # fmt: skip


def test_login_posts_header_and_signed_body(key, cert_pem):
    host = FakeAuthHost()
    auth = _auth(host, cert_pem, _key_pem(key, PASSPHRASE), passphrase=PASSPHRASE)

    assert auth.header() == "AnaplanAuthToken tok"
    url, headers, body = host.calls[0]
    assert url == "https://auth.example/token/authenticate"
    assert headers == {"Authorization": certificate_header(load_certificate(cert_pem))}
    assert body["encodedDataFormat"] == "v2"
    _verify(key, body)


def test_refusal_explains_what_to_check(key, cert_pem):
    auth = _auth(FakeAuthHost(401), cert_pem, _key_pem(key))
    with pytest.raises(AuthenticationError, match="registered for the user") as caught:
        auth.header()
    assert "Not registered" in str(caught.value)


@pytest.mark.parametrize(
    ("passphrase", "stored_with", "match"),
    [
        (None, PASSPHRASE, "encrypted; set private_key_passphrase"),
        ("wrong-pass", PASSPHRASE, "private_key_passphrase is wrong"),
        (PASSPHRASE, None, "not encrypted; remove private_key_passphrase"),
    ],
)
def test_passphrase_problems_are_explained(key, cert_pem, passphrase, stored_with, match):
    with pytest.raises(AuthenticationError, match=match) as caught:
        _auth(FakeAuthHost(), cert_pem, _key_pem(key, stored_with), passphrase=passphrase)
    assert "PRIVATE KEY" not in str(caught.value)
    assert PASSPHRASE not in str(caught.value)


def test_key_of_another_certificate_is_refused(key, cert_pem):
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(AuthenticationError, match="does not belong to the certificate"):
        _auth(FakeAuthHost(), cert_pem, _key_pem(other))


def test_non_rsa_key_is_refused(cert_pem):
    with pytest.raises(AuthenticationError, match="must be an RSA key"):
        _auth(FakeAuthHost(), cert_pem, _key_pem(ec.generate_private_key(ec.SECP256R1())))


def test_unreadable_material_never_echoes_pem_text(tmp_path, cert_pem, key):
    missing = tmp_path / "nope.pem"
    with pytest.raises(AuthenticationError, match=r"nope\.pem"):
        load_certificate(str(missing))
    garbage_key = (
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----"
    )
    with pytest.raises(AuthenticationError) as caught:
        load_private_key(garbage_key, None)
    assert "c2VjcmV0" not in str(caught.value)
    long_base64_key = base64.b64encode(b"k" * 1200).decode()
    with pytest.raises(AuthenticationError) as caught:
        load_private_key(long_base64_key, None)
    assert long_base64_key not in str(caught.value)


def test_unknown_data_format_is_refused(key, cert_pem):
    with pytest.raises(AuthenticationError, match="certificate_data_format 'v3'"):
        _auth(FakeAuthHost(), cert_pem, _key_pem(key), data_format="v3")
