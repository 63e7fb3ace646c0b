"""CA certificate login against the simulator, with a CA generated at test time."""

from __future__ import annotations

import pytest
import requests

from target_anaplan.anaplan.certificate import CertificateAuth
from target_anaplan.anaplan.errors import AuthenticationError
from target_anaplan.simulator import Simulator
from tests.kit.certgen import generate
from tests.kit.oauthkit import api_status, encrypted

PASSPHRASE = "cert-passphrase"


def cert_auth(cert_sim: Simulator, cert: str, key: str, **kwargs) -> CertificateAuth:
    kwargs.setdefault("clock", cert_sim.state.clock)  # v2 timestamps are checked against its clock
    return CertificateAuth(
        requests.Session(), cert_sim.url, certificate=cert, private_key=key, **kwargs
    )


@pytest.mark.parametrize("data_format", ["v2", "v1"])
def test_login_with_pem_text(cert_sim, cert_bundle, data_format):
    auth = cert_auth(
        cert_sim, cert_bundle.leaf_cert_pem, cert_bundle.leaf_key_pem, data_format=data_format
    )
    assert api_status(cert_sim, auth.header()) == 200


def test_login_with_files_and_an_encrypted_key(cert_sim, cert_bundle, tmp_path):
    (tmp_path / "cert.pem").write_text(cert_bundle.leaf_cert_pem)
    (tmp_path / "key.pem").write_text(encrypted(cert_bundle.leaf_key_pem, PASSPHRASE))
    auth = cert_auth(
        cert_sim, str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), passphrase=PASSPHRASE
    )
    assert api_status(cert_sim, auth.header()) == 200


def test_token_is_refreshed_near_expiry_and_replaced_after_it_lapsed(cert_sim, cert_bundle):
    auth = cert_auth(cert_sim, cert_bundle.leaf_cert_pem, cert_bundle.leaf_key_pem)
    first = auth.header()
    cert_sim.advance_clock(1900)  # inside the renewal margin: /token/refresh extends the token
    assert auth.header() == first
    cert_sim.advance_clock(2200)  # now past even the extended expiry
    assert api_status(cert_sim, first) == 401
    second = auth.header()  # refresh is refused, so it logs in again
    assert second != first
    assert api_status(cert_sim, second) == 200


def test_unregistered_certificate_is_refused_with_a_clear_message(cert_sim):
    stranger = generate("stranger@example.com")
    auth = cert_auth(cert_sim, stranger.leaf_cert_pem, stranger.leaf_key_pem)
    with pytest.raises(AuthenticationError, match="registered for the user") as caught:
        auth.header()
    assert "CN=stranger@example.com" in str(caught.value)
