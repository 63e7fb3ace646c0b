"""CA-certificate login on /token/authenticate: v1 and v2 encoded data, refusals."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.kit.authkit import EMAIL, call, service
from tests.kit.certgen import generate, sign

BUNDLE = generate()
STRANGER = generate("stranger@example.com")


def cert_request(data, signature=None, *, cert_pem=BUNDLE.leaf_cert_pem, data_format=None):
    """Headers and body of a certificate login, as the SDK/JAVA/HERMES clients build them."""
    payload = {
        "encodedData": base64.b64encode(data).decode(),
        "encodedSignedData": base64.b64encode(
            signature or sign(BUNDLE.leaf_key_pem, data)
        ).decode(),
    }
    if data_format:
        payload["encodedDataFormat"] = data_format
    headers = {
        "Authorization": "CACertificate " + base64.b64encode(cert_pem.encode()).decode(),
        "Content-Type": "application/json",
    }
    return headers, json.dumps(payload).encode()


def cert_login(auth, data, signature=None, *, header=None, **kwargs):
    headers, body = cert_request(data, signature, **kwargs)
    if header:
        headers["Authorization"] = f"CACertificate {header}"
    return call(auth, "POST", "/token/authenticate", headers=headers, body=body)


def v2_data(timestamp, random_bytes=100):
    return int(timestamp).to_bytes(8, "big") + os.urandom(random_bytes)


def assert_refused(answer, fragment):
    status, body, _ = answer
    assert (status, body["status"]) == (401, "FAILURE_BAD_CREDENTIAL")
    assert fragment in body["statusMessage"]


@pytest.fixture
def auth_and_clock():
    return service([BUNDLE.leaf_cert_pem])


def test_v1_login_with_a_registered_certificate(auth_and_clock):
    auth, _ = auth_and_clock
    status, body, _ = cert_login(auth, os.urandom(150))
    assert (status, body["statusMessage"]) == (201, "Login successful")
    assert auth.authenticate_api(f"AnaplanAuthToken {body['tokenInfo']['tokenValue']}") == EMAIL


@pytest.mark.parametrize("scale", [1, 1000], ids=["seconds", "milliseconds"])
def test_v2_login_accepts_a_fresh_timestamp_in_either_unit(auth_and_clock, scale):
    auth, clock = auth_and_clock
    status, _, _ = cert_login(auth, v2_data((clock.now - 60) * scale), data_format="v2")
    assert status == 201


def test_v2_stale_timestamp_is_refused(auth_and_clock):
    auth, clock = auth_and_clock
    assert_refused(cert_login(auth, v2_data(clock.now - 301), data_format="v2"), "timestamp")
    clock.advance(600)  # the same data later, as a replayed request would be
    assert_refused(cert_login(auth, v2_data(clock.now - 600), data_format="v2"), "timestamp")


def test_certificate_is_compared_by_der_not_pem_text():
    certificate = x509.load_pem_x509_certificate(BUNDLE.leaf_cert_pem.encode())
    auth, _ = service([BUNDLE.leaf_cert_pem.replace("\n", "\r\n")])  # other line endings
    der_header = base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()
    assert cert_login(auth, os.urandom(150), header=der_header)[0] == 201


def test_wrong_signature_is_refused(auth_and_clock):
    auth, _ = auth_and_clock
    data = os.urandom(150)
    assert_refused(cert_login(auth, data, sign(STRANGER.leaf_key_pem, data)), "signature")
    assert_refused(cert_login(auth, data, sign(BUNDLE.leaf_key_pem, data[1:])), "signature")


def test_unregistered_certificate_is_refused(auth_and_clock):
    auth, _ = auth_and_clock
    data = os.urandom(150)
    answer = cert_login(
        auth, data, sign(STRANGER.leaf_key_pem, data), cert_pem=STRANGER.leaf_cert_pem
    )
    assert_refused(answer, "not registered")
    assert_refused(cert_login(auth, data, cert_pem=BUNDLE.ca_cert_pem), "not registered")


def test_too_little_random_data_is_refused(auth_and_clock):
    auth, clock = auth_and_clock
    assert_refused(cert_login(auth, os.urandom(99)), "at least 100")
    assert_refused(cert_login(auth, v2_data(clock.now, 10), data_format="v2"), "at least")


def test_unknown_format_and_missing_fields_are_refused(auth_and_clock):
    auth, _ = auth_and_clock
    assert_refused(cert_login(auth, os.urandom(150), data_format="v9"), "encodedDataFormat")
    headers = {
        "Authorization": "CACertificate " + base64.b64encode(BUNDLE.leaf_cert_pem.encode()).decode()
    }
    assert_refused(
        call(auth, "POST", "/token/authenticate", headers=headers, body=b"{}"), "encodedData"
    )


@pytest.mark.parametrize("credentials", ["%%%", base64.b64encode(b"not a certificate").decode()])
def test_unreadable_certificate_header_is_400(auth_and_clock, credentials):
    auth, _ = auth_and_clock
    headers = {"Authorization": f"CACertificate {credentials}"}
    status, body, _ = call(auth, "POST", "/token/authenticate", headers=headers, body=b"{}")
    assert (status, body["status"]) == (400, "FAILURE_BAD_HEADER")


def test_body_is_read_as_json_without_a_content_type(auth_and_clock):
    auth, _ = auth_and_clock
    headers, body = cert_request(os.urandom(150))
    del headers["Content-Type"]
    assert call(auth, "POST", "/token/authenticate", headers=headers, body=body)[0] == 201
