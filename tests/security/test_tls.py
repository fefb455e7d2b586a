"""TLS with a certificate made in the test: clients that trust it connect, plaintext ones cannot."""

from __future__ import annotations

import ssl

import httpx
import pytest

from crossrank.client import CrossrankClient, UnavailableError

DOCS = ["paris is the capital of france", "the weather is cold"]


def test_client_with_the_ca_certificate(tls_worker, tls_files):
    cert, _ = tls_files
    with CrossrankClient(tls_worker.address, ca_cert=str(cert), timeout=10) as client:
        assert len(client.rerank("capital of france", DOCS).results) == 2
    with CrossrankClient(f"localhost:{tls_worker.port}", ca_cert=cert.read_bytes(), timeout=10) as client:
        assert client.info().model == tls_worker.settings.model


def test_plaintext_client_fails(tls_worker):
    with CrossrankClient(tls_worker.address, timeout=2) as client, pytest.raises(UnavailableError):
        client.rerank("capital of france", DOCS)


def test_http_gateway_serves_https_with_the_same_certificate(tls_worker, tls_files):
    cert, _ = tls_files
    trusted = ssl.create_default_context(cafile=str(cert))
    response = httpx.post(f"https://127.0.0.1:{tls_worker.http_port}/rerank",
                          json={"query": "capital of france", "texts": DOCS}, verify=trusted)
    assert response.status_code == 200

    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_worker.http_port}/health")
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
        httpx.get(f"https://127.0.0.1:{tls_worker.http_port}/health")
