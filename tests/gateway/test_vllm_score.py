"""vLLM's score API on /score and /v1/score: its pairing rules, and its response field for field
(ScoreResponse in vllm/entrypoints/pooling/score/protocol.py)."""

from __future__ import annotations

import httpx
import pytest
from numpy.testing import assert_allclose

QUERY = "what is the capital of france"
DOCS = ["paris is the capital of france", "berlin is in germany", "the weather is cold"]


@pytest.mark.parametrize("path", ["/score", "/v1/score"])
@pytest.mark.parametrize(
    ("text_1", "text_2", "pairs"),
    [
        (QUERY, DOCS[0], [(QUERY, DOCS[0])]),  # 1:1, strings
        (QUERY, DOCS, [(QUERY, d) for d in DOCS]),  # 1:N
        ([QUERY], DOCS, [(QUERY, d) for d in DOCS]),  # 1:N, a list of one
        ([QUERY, "cold", "germany"], DOCS, list(zip([QUERY, "cold", "germany"], DOCS, strict=True))),  # N:N
    ],
)
def test_scores_match_grpc_score(http, grpc_client, gateway, path, text_1, text_2, pairs):
    expected = grpc_client.score(pairs)
    response = http.post(path, json={"model": "BAAI/bge-reranker-v2-m3", "text_1": text_1, "text_2": text_2})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "object", "created", "model", "data", "usage"}
    assert body["object"] == "list" and body["id"].startswith("score-") and isinstance(body["created"], int)
    assert body["model"] == gateway.settings.model
    assert [set(d) for d in body["data"]] == [{"index", "object", "score"}] * len(pairs)
    assert [d["index"] for d in body["data"]] == list(range(len(pairs)))
    assert all(d["object"] == "score" for d in body["data"])
    assert_allclose([d["score"] for d in body["data"]], expected.scores, rtol=1e-6)
    assert body["usage"] == {
        "prompt_tokens": expected.usage.tokens,
        "total_tokens": expected.usage.tokens,
        "completion_tokens": 0,
        "prompt_tokens_details": None,
    }


def test_use_activation_false_gives_logits(http, grpc_client):
    expected = grpc_client.score([(QUERY, d) for d in DOCS], raw_scores=True)
    body = http.post("/score", json={"text_1": QUERY, "text_2": DOCS, "use_activation": False}).json()
    assert_allclose([d["score"] for d in body["data"]], expected.scores, rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"text_1": [QUERY, QUERY], "text_2": DOCS}, "1:1, 1:N or N:N"),
        ({"text_1": [], "text_2": DOCS}, "At least one text element"),
        ({"text_1": QUERY, "text_2": []}, "At least one text_pair element"),
        ({"text_1": QUERY}, "text_2: Field required"),
        ({"text_1": "  ", "text_2": DOCS}, "empty query"),
    ],
)
def test_bad_input_is_4xx_in_openais_error_shape(http, body, says):
    response = http.post("/v1/score", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert says in error["message"]
    assert error["type"] == "UnprocessableEntityError" and error["code"] == 422 and error["param"] is None


def test_a_missing_token_is_401_in_openais_error_shape(secured_url):
    response = httpx.post(f"{secured_url}/v1/score", json={"text_1": QUERY, "text_2": DOCS})
    assert response.status_code == 401
    error = response.json()["error"]
    assert "missing bearer token" in error["message"]
    assert error["type"] == "UnauthorizedError" and error["code"] == 401
