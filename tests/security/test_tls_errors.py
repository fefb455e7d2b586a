"""A TLS set-up that cannot work stops `crossrank serve` with one line naming the file and the fault."""

from __future__ import annotations

import subprocess

import pytest
from support.credentials import write_self_signed_certificate
from support.workers import crossrank_command


@pytest.fixture(scope="module")
def two_pairs(tmp_path_factory):
    return (write_self_signed_certificate(tmp_path_factory.mktemp("one")),
            write_self_signed_certificate(tmp_path_factory.mktemp("two")))


def _serve(cert, key, tiny_cross_encoder) -> subprocess.CompletedProcess:
    return subprocess.run(crossrank_command("serve", "--port", "0", "--model", str(tiny_cross_encoder),
                                            "--embed-model", "none", "--device", "cpu",
                                            "--tls-cert", str(cert), "--tls-key", str(key)),
                          capture_output=True, text=True, timeout=120)


def test_a_key_that_does_not_match_the_certificate(two_pairs, tiny_cross_encoder):
    (cert, _), (_, other_key) = two_pairs
    result = _serve(cert, other_key, tiny_cross_encoder)
    assert result.returncode != 0
    assert f"tls_key {other_key} is not the private key of the certificate in tls_cert {cert}" in result.stderr
    assert "Traceback" not in result.stderr and "Failed to bind" not in result.stderr


@pytest.mark.parametrize("which", ["cert", "key"])
def test_a_missing_file(two_pairs, tiny_cross_encoder, tmp_path, which):
    (cert, key), _ = two_pairs
    missing = tmp_path / "missing.pem"
    result = _serve(missing if which == "cert" else cert, missing if which == "key" else key, tiny_cross_encoder)
    assert result.returncode != 0
    assert f"tls_{which} {missing} cannot be read: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_key_given_as_the_certificate(two_pairs, tiny_cross_encoder):
    (_, key), _ = two_pairs
    result = _serve(key, key, tiny_cross_encoder)
    assert result.returncode != 0
    assert f"tls_cert {key} holds no PEM certificate" in result.stderr
    assert "Traceback" not in result.stderr
