"""Full target runs (real processes) with CA certificate auth, v2 and v1."""

from __future__ import annotations

import pytest

from tests.kit.certgen import generate
from tests.kit.oauthkit import encrypted, product_codes, singer_input, target_config, token_requests
from tests.kit.targetkit import run_subprocess

PASSPHRASE = "Passphrase-9c2e-SECRET"


@pytest.mark.parametrize("data_format", ["v2", "v1"])
def test_full_load_with_certificate_files(cert_sim, cert_bundle, tmp_path, data_format):
    key_pem = encrypted(cert_bundle.leaf_key_pem, PASSPHRASE)
    (tmp_path / "cert.pem").write_text(cert_bundle.leaf_cert_pem)
    (tmp_path / "key.pem").write_text(key_pem)
    config = target_config(
        cert_sim,
        certificate=str(tmp_path / "cert.pem"),
        private_key=str(tmp_path / "key.pem"),
        private_key_passphrase=PASSPHRASE,
        certificate_data_format=data_format,
    )

    run = run_subprocess(config, singer_input(["C1"]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ['{"products": 1}']
    assert "C1" in product_codes(cert_sim)
    key_lines = [line for line in key_pem.splitlines() if not line.startswith("-----")]
    for secret in [PASSPHRASE, *key_lines]:
        assert secret not in run.stdout + run.stderr


def test_certificate_login_after_a_token_refused_mid_upload(cert_sim, cert_bundle, tmp_path):
    fault = {"kind": "http", "status": 401, "method": "PUT", "path": "/chunks/", "nth": 1}
    cert_sim.add_fault(fault)
    config = target_config(
        cert_sim, certificate=cert_bundle.leaf_cert_pem, private_key=cert_bundle.leaf_key_pem
    )

    run = run_subprocess(config, singer_input(["C2"]), tmp_path)

    assert run.returncode == 0, run.stderr
    assert "C2" in product_codes(cert_sim)
    assert token_requests(cert_sim, "/token/authenticate") == 2  # logged in again after the 401


def test_unregistered_certificate_fails_with_one_line(cert_sim, tmp_path):
    stranger = generate("stranger@example.com")
    config = target_config(cert_sim, certificate=stranger.leaf_cert_pem,
                           private_key=stranger.leaf_key_pem)  # fmt: skip
    run = run_subprocess(config, singer_input(["C3"]), tmp_path)
    assert run.returncode == 1
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert "registered for the user in Anaplan Administration" in run.stderr
