"""The gateway tests' shared parts: a worker with the gateway on, the token and name it serves, and
the check every real-client test makes (the client's ranking is gRPC Rerank's, scores included)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from numpy.testing import assert_allclose

from support.workers import worker_settings

# The RAG frameworks' clients run against a worker as a user would deploy it: a token, and a name to serve.
TOKEN = "gateway-client-token"
SERVED_NAME = "crossrank-tiny-reranker"

QUERY = "what is the capital of france"
DOCUMENTS = [
    "berlin is the capital of germany",
    "paris is the capital of france",
    "the stock market fell",
    "how to treat a cold",
    "beijing is the capital city of china",
]


def assert_same_ranking(grpc_client, texts: list[str], scores: list[float], top_k: int = 0) -> None:
    """`texts` and `scores` as the client returned them, best first; gRPC Rerank of the same request agrees."""
    expected = grpc_client.rerank(QUERY, DOCUMENTS, top_k=top_k)
    assert texts == [DOCUMENTS[r.index] for r in expected.results]
    assert_allclose(scores, [r.score for r in expected.results], rtol=1e-6)


@contextlib.contextmanager
def serving(model: Path, **overrides) -> Iterator:
    """An in-process worker, warm, with the gateway on a free port (`http_port=-1`)."""
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(model, http_port=-1, **overrides))
    try:
        assert server.wait_ready(120), server.engine.load_error
        yield server
    finally:
        server.stop(0)
