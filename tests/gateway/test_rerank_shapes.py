"""POST /rerank speaks TEI (`texts` -> a list) and Infinity/vLLM (`documents` -> an object); GET /info has
TEI's fields; TEI's `truncation_direction: Left` cuts the start of a long text."""

from __future__ import annotations

import pytest
from numpy.testing import assert_allclose

QUERY = "what is retrieval augmented generation"
DOCS = ["rag is retrieval augmented generation", "paris is in france", "vector database search", "the weather is cold"]


def _check_ranking(results, expected, key="relevance_score"):
    assert [r["index"] for r in results] == [r.index for r in expected.results]
    assert_allclose([r[key] for r in results], [r.score for r in expected.results], rtol=1e-6)


def test_infinity_body_gets_infinitys_response(http, grpc_client, gateway):
    expected = grpc_client.rerank(QUERY, DOCS, top_k=3)
    response = http.post(
        "/rerank",
        json={
            "model": "default/not-specified",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 3,
            "return_documents": True,
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "rerank" and body["id"] and isinstance(body["created"], int)
    assert body["model"] == gateway.settings.model
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == expected.usage.tokens
    _check_ranking(body["results"], expected)
    assert [r["document"] for r in body["results"]] == [DOCS[r.index] for r in expected.results]  # strings


def test_infinity_without_documents_and_raw_scores(http, grpc_client):
    expected = grpc_client.rerank(QUERY, DOCS, raw_scores=True)
    body = http.post(
        "/rerank", json={"query": QUERY, "documents": DOCS, "return_documents": False, "raw_scores": True}
    ).json()
    _check_ranking(body["results"], expected)
    assert all(r.get("document") is None for r in body["results"])


def test_vllm_body_gets_vllms_response(http, grpc_client):
    """vLLM's request has no return_documents; its RerankResult always has `document: {text}`, and
    `top_n: 0` means every document (vllm/entrypoints/pooling/score/protocol.py)."""
    expected = grpc_client.rerank(QUERY, DOCS)
    body = http.post(
        "/rerank", json={"model": "BAAI/bge-reranker-v2-m3", "query": QUERY, "documents": DOCS, "top_n": 0}
    ).json()

    assert {"id", "model", "usage", "results"} <= set(body)
    assert body["usage"]["total_tokens"] == expected.usage.tokens
    _check_ranking(body["results"], expected)
    assert [r["document"] for r in body["results"]] == [{"text": DOCS[r.index]} for r in expected.results]


def test_tei_body_still_gets_a_list(http):
    body = http.post("/rerank", json={"query": QUERY, "texts": DOCS}).json()
    assert isinstance(body, list) and {r["index"] for r in body} == set(range(len(DOCS)))


def test_info_has_teis_fields(http, grpc_client, gateway):
    info = http.get("/info").json()
    expected = grpc_client.info()
    assert "reranker" in info["model_type"]
    assert info["max_input_length"] == expected.max_input_length
    assert info["max_client_batch_size"] == gateway.settings.max_documents_per_request
    assert info["model_id"] == gateway.settings.model


FILLER = "rag " * 1500


def _tei_score(http, text: str, direction: str) -> float:
    response = http.post("/rerank", json={"query": QUERY, "texts": [text], "truncation_direction": direction})
    assert response.status_code == 200, response.text
    return response.json()[0]["score"]


@pytest.mark.parametrize("end", ["paris is the capital of france", "quantum chromodynamics lattice"])
def test_left_truncation_keeps_the_end(http, end):
    """Left: a longer start changes nothing, a different end changes the score. Right: the reverse."""
    left = _tei_score(http, FILLER + end, "Left")
    assert left == pytest.approx(_tei_score(http, FILLER * 2 + end, "left"), rel=1e-6)
    right = _tei_score(http, FILLER + end, "Right")
    assert right == pytest.approx(_tei_score(http, FILLER + "something else", "right"), rel=1e-6)
    assert left != pytest.approx(right, rel=1e-6)


def test_left_truncation_ends_differ(http):
    scores = {_tei_score(http, FILLER + end, "Left") for end in ("paris is in france", "cold weather today")}
    assert len(scores) == 2


def test_left_with_truncate_false_still_refuses_long_text(http):
    response = http.post(
        "/rerank", json={"query": QUERY, "texts": [FILLER], "truncate": False, "truncation_direction": "Left"}
    )
    assert response.status_code == 422
    assert response.json()["error"].startswith("Input validation error")
