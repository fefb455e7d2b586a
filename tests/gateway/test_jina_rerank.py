"""Jina's rerank shape on /v1/rerank: Cohere's fields plus Jina's `model`, `usage` and documents."""

from __future__ import annotations

from numpy.testing import assert_allclose

QUERY = "what is retrieval augmented generation"
DOCS = ["rag is retrieval augmented generation", "paris is in france", "vector database search"]


def test_jina_body_gets_jinas_response(http, grpc_client, gateway):
    expected = grpc_client.rerank(QUERY, DOCS, top_k=2)
    response = http.post(
        "/v1/rerank",
        json={"model": "jina-reranker-v2-base-multilingual", "query": QUERY, "documents": DOCS, "top_n": 2},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == gateway.settings.model  # no --served-model-name: the model as loaded
    # The tokens the engine scored: the same request over gRPC reports the same count.
    assert body["usage"]["total_tokens"] == expected.usage.tokens > 0
    assert [r["index"] for r in body["results"]] == [r.index for r in expected.results]
    assert_allclose([r["relevance_score"] for r in body["results"]], [r.score for r in expected.results], rtol=1e-6)
    # Jina returns the documents unless told not to.
    assert [r["document"]["text"] for r in body["results"]] == [DOCS[r.index] for r in expected.results]
    # Cohere's fields stay, so a Cohere v1 client reads the same body.
    assert body["id"] and body["meta"]["billed_units"]["search_units"] == 1


def test_documents_as_objects_and_return_documents_false(http):
    body = http.post(
        "/v1/rerank", json={"query": QUERY, "documents": [{"text": d} for d in DOCS], "return_documents": False}
    ).json()
    assert len(body["results"]) == 3 and all("document" not in r for r in body["results"])


def test_cohere_v2_returns_no_documents_unless_asked(http):
    body = http.post("/v2/rerank", json={"model": "m", "query": QUERY, "documents": DOCS}).json()
    assert all("document" not in r for r in body["results"])
    assert body["model"] and body["usage"]["total_tokens"] == body["meta"]["tokens"]["input_tokens"] > 0


def test_an_error_carries_jinas_detail(http):
    """Jina's clients raise `detail` when a body has no `results`."""
    response = http.post("/v1/rerank", json={"query": QUERY, "documents": []})
    assert response.status_code == 422
    error = response.json()
    assert "results" not in error and "no documents" in error["detail"] and error["detail"] == error["error"]


def test_top_n_zero_is_every_document_on_v1_only(http):
    """vLLM's Jina-style route sends `top_n: 0` for all; Cohere's v2 refuses it."""
    body = {"query": QUERY, "documents": DOCS, "top_n": 0}
    assert len(http.post("/v1/rerank", json=body).json()["results"]) == len(DOCS)
    assert http.post("/v2/rerank", json=body).status_code == 422
