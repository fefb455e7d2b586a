"""TEI's /rerank shape over plain HTTP: the same ranking as gRPC, TEI's field names and defaults."""

from __future__ import annotations

from numpy.testing import assert_allclose

QUERY = "what is retrieval augmented generation"
TEXTS = ["rag is retrieval augmented generation", "paris is in france", "vector database search",
         "the weather is cold"]


def test_rerank_matches_grpc(http, grpc_client):
    expected = grpc_client.rerank(QUERY, TEXTS)
    response = http.post("/rerank", json={"query": QUERY, "texts": TEXTS})

    assert response.status_code == 200
    ranks = response.json()
    assert [r["index"] for r in ranks] == [r.index for r in expected.results]
    assert_allclose([r["score"] for r in ranks], [r.score for r in expected.results], rtol=1e-6)
    assert all("text" not in r for r in ranks)


def test_raw_scores_and_return_text(http, grpc_client):
    expected = grpc_client.rerank(QUERY, TEXTS, raw_scores=True)
    ranks = http.post("/rerank", json={"query": QUERY, "texts": TEXTS, "raw_scores": True,
                                       "return_text": True}).json()

    assert_allclose([r["score"] for r in ranks], [r.score for r in expected.results], rtol=1e-6)
    assert [r["text"] for r in ranks] == [TEXTS[r.index] for r in expected.results]


def test_long_text_truncated_unless_truncate_is_false(http):
    texts = ["rag " * 1000, "short text"]
    assert http.post("/rerank", json={"query": QUERY, "texts": texts}).status_code == 200
    assert http.post("/rerank", json={"query": QUERY, "texts": texts, "truncate": True}).status_code == 200

    refused = http.post("/rerank", json={"query": QUERY, "texts": texts, "truncate": False})
    assert refused.status_code == 422
    assert refused.json()["error_type"] == "Validation"
    # TEI's own words, which its clients show and match, not the gRPC field names.
    assert refused.json()["error"].startswith("Input validation error: `inputs` must have less than ")
    assert "long_document" not in refused.json()["error"]


def test_request_id_is_echoed(http):
    response = http.post("/rerank", json={"query": QUERY, "texts": TEXTS}, headers={"X-Request-Id": "tei-42"})
    assert response.headers["x-request-id"] == "tei-42"

    cohere = http.post("/v2/rerank", json={"model": "m", "query": QUERY, "documents": TEXTS},
                       headers={"X-Request-Id": "cohere-7"})
    assert cohere.json()["id"] == "cohere-7"
