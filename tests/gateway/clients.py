"""What every real-client test checks: the client's ranking is gRPC Rerank's, scores included."""

from __future__ import annotations

from numpy.testing import assert_allclose

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
