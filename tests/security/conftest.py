"""Workers that want a bearer token, or speak TLS with a certificate made here, per test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.credentials import TOKEN, write_self_signed_certificate
from support.workers import worker_settings


@pytest.fixture(scope="package")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    return write_self_signed_certificate(tmp_path_factory.mktemp("tls"))


def _serve(settings) -> Iterator:
    from crossrank.worker.server import create_server

    server = create_server(settings)
    assert server.wait_ready(120), server.engine.load_error
    yield server
    server.stop(0)


@pytest.fixture(scope="package")
def token_worker(tiny_cross_encoder) -> Iterator:
    """gRPC and the HTTP gateway, both wanting `Bearer TOKEN`."""
    yield from _serve(worker_settings(tiny_cross_encoder, auth_token=TOKEN, http_port=-1))


@pytest.fixture(scope="package")
def tls_worker(tiny_cross_encoder, tls_files) -> Iterator:
    """gRPC and the HTTP gateway over TLS, with the certificate of `tls_files`."""
    cert, key = tls_files
    yield from _serve(worker_settings(tiny_cross_encoder, tls_cert=str(cert), tls_key=str(key), http_port=-1))
