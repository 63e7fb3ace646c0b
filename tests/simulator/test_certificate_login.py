"""CA certificate login against the simulator, with a CA generated at test time."""

from __future__ import annotations

import pytest
import requests
from certgen import generate
from cryptography.hazmat.primitives import serialization
from test_oauth_refresh import advance_clock, api_status, oauth_scenario

from target_anaplan.anaplan.certificate import CertificateAuth
from target_anaplan.anaplan.errors import AuthenticationError
from target_anaplan.simulator import Simulator

PASSPHRASE = "cert-passphrase"


@pytest.fixture(scope="module")
def bundle():
    return generate()


@pytest.fixture
def sim(sim_with, bundle) -> Simulator:
    return sim_with(oauth_scenario(certificates=[bundle.leaf_cert_pem]))


def encrypted(key_pem: str, passphrase: str) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()


def cert_auth(sim: Simulator, cert: str, key: str, **kwargs) -> CertificateAuth:
    kwargs.setdefault("clock", sim.state.clock)  # v2 timestamps are checked against its clock
    return CertificateAuth(requests.Session(), sim.url, certificate=cert, private_key=key, **kwargs)


@pytest.mark.parametrize("data_format", ["v2", "v1"])
def test_login_with_pem_text(sim, bundle, data_format):
    auth = cert_auth(sim, bundle.leaf_cert_pem, bundle.leaf_key_pem, data_format=data_format)
    assert api_status(sim, auth.header()) == 200


def test_login_with_files_and_an_encrypted_key(sim, bundle, tmp_path):
    (tmp_path / "cert.pem").write_text(bundle.leaf_cert_pem)
    (tmp_path / "key.pem").write_text(encrypted(bundle.leaf_key_pem, PASSPHRASE))
    auth = cert_auth(
        sim, str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), passphrase=PASSPHRASE
    )
    assert api_status(sim, auth.header()) == 200


def test_token_is_refreshed_near_expiry_and_replaced_after_it_lapsed(sim, bundle):
    auth = cert_auth(sim, bundle.leaf_cert_pem, bundle.leaf_key_pem)
    first = auth.header()
    advance_clock(sim, 1900)  # inside the renewal margin: /token/refresh extends the token
    assert auth.header() == first
    advance_clock(sim, 2200)  # now past even the extended expiry
    assert api_status(sim, first) == 401
    second = auth.header()  # refresh is refused, so it logs in again
    assert second != first
    assert api_status(sim, second) == 200


def test_unregistered_certificate_is_refused_with_a_clear_message(sim):
    stranger = generate("stranger@example.com")
    auth = cert_auth(sim, stranger.leaf_cert_pem, stranger.leaf_key_pem)
    with pytest.raises(AuthenticationError, match="registered for the user") as caught:
        auth.header()
    assert "CN=stranger@example.com" in str(caught.value)
