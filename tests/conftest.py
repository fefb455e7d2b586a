"""Shared fixtures: tiny models on disk, and real workers on free ports.

Nothing here downloads: HF_HUB_OFFLINE is set before any Hugging Face import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workers import worker_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    from support.tiny_models import build_cross_encoder

    return build_cross_encoder(tmp_path_factory.mktemp("models") / "tiny-cross-encoder")


@pytest.fixture(scope="session")
def tiny_causal_reranker(tmp_path_factory) -> Path:
    from support.tiny_models import build_causal_reranker

    return build_causal_reranker(tmp_path_factory.mktemp("models") / "tiny-causal-reranker")


@pytest.fixture(scope="session")
def tiny_bi_encoder(tmp_path_factory) -> Path:
    from support.tiny_models import build_bi_encoder

    return build_bi_encoder(tmp_path_factory.mktemp("models") / "tiny-bi-encoder")


@pytest.fixture(scope="session")
def worker(tiny_cross_encoder, tiny_bi_encoder) -> Iterator:
    """One in-process worker for the session, serving both tiny models."""
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, tiny_bi_encoder))
    assert server.wait_ready(120), server.engine.load_error
    yield server
    server.stop(0)


@pytest.fixture(scope="session")
def oracle(tiny_cross_encoder):
    """sentence-transformers' own CrossEncoder on the same weights: what scores must equal."""
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(tiny_cross_encoder), device="cpu")
