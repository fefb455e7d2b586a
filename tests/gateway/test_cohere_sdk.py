"""The official Cohere SDK, pointed at the gateway with `base_url`, works unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import cohere
import pytest
from numpy.testing import assert_allclose
from support.gateway import DOCUMENTS, QUERY


@pytest.fixture
def co(base_url) -> Iterator[cohere.ClientV2]:
    with cohere.ClientV2(api_key="unused", base_url=base_url, timeout=30) as client:
        yield client


def test_v2_rerank_matches_grpc(co, grpc_client):
    expected = grpc_client.rerank(QUERY, DOCUMENTS)
    response = co.rerank(model="rerank-v3.5", query=QUERY, documents=DOCUMENTS)

    assert [r.index for r in response.results] == [r.index for r in expected.results]
    assert_allclose([r.relevance_score for r in response.results], [r.score for r in expected.results],
                    rtol=1e-6)
    assert response.meta.billed_units.search_units == 1
    assert response.id


def test_v2_top_n(co, grpc_client):
    expected = grpc_client.rerank(QUERY, DOCUMENTS, top_k=2)
    response = co.rerank(model="any", query=QUERY, documents=DOCUMENTS, top_n=2)

    assert [r.index for r in response.results] == [r.index for r in expected.results]
    assert len(response.results) == 2


def test_v1_client_returns_documents_given_as_objects(base_url, grpc_client):
    expected = grpc_client.rerank(QUERY, DOCUMENTS, top_k=3)
    with cohere.Client(api_key="unused", base_url=base_url, timeout=30) as co_v1:
        response = co_v1.rerank(model="any", query=QUERY, documents=[{"text": d} for d in DOCUMENTS], top_n=3,
                                return_documents=True)

    assert [r.index for r in response.results] == [r.index for r in expected.results]
    assert [r.document.text for r in response.results] == [DOCUMENTS[r.index] for r in expected.results]


def test_bad_input_raises_the_sdk_error(co):
    with pytest.raises(cohere.errors.UnprocessableEntityError) as caught:
        co.rerank(model="any", query="", documents=DOCUMENTS)
    assert "query is empty" in caught.value.body["message"]


# Their first four words are four tokens of the tiny model's vocabulary (tests/support/tiny_models.py).
LONG_DOCUMENTS = ["paris is the capital of france and the seat of its government", "how to treat a cold in the winter"]


def test_v2_max_tokens_per_doc_scores_each_documents_first_tokens(co, grpc_client):
    first_four = [" ".join(d.split()[:4]) for d in LONG_DOCUMENTS]
    expected = grpc_client.rerank(QUERY, first_four)
    whole = co.rerank(model="any", query=QUERY, documents=LONG_DOCUMENTS)
    response = co.rerank(model="any", query=QUERY, documents=LONG_DOCUMENTS, max_tokens_per_doc=4)

    assert [r.index for r in response.results] == [r.index for r in expected.results]
    assert_allclose([r.relevance_score for r in response.results], [r.score for r in expected.results],
                    rtol=1e-6)
    # Usage counts the tokens scored, fewer than the whole documents'.
    assert response.meta.tokens.input_tokens == expected.usage.tokens < whole.meta.tokens.input_tokens


def test_v2_max_tokens_per_doc_null_is_the_models_limit(http, grpc_client):
    """The SDK sends null for unset fields; null means no cut below the model's own limit."""
    expected = grpc_client.rerank(QUERY, LONG_DOCUMENTS)
    body = http.post("/v2/rerank", json={"model": "m", "query": QUERY, "documents": LONG_DOCUMENTS,
                                         "max_tokens_per_doc": None}).json()
    cut = http.post("/v2/rerank", json={"query": QUERY, "documents": LONG_DOCUMENTS, "max_tokens_per_doc": 2,
                                        "return_documents": True}).json()
    assert {r["document"]["text"] for r in cut["results"]} == set(LONG_DOCUMENTS)  # returned as sent, uncut
    assert_allclose([r["relevance_score"] for r in body["results"]], [r.score for r in expected.results],
                    rtol=1e-6)
    assert body["usage"]["total_tokens"] == expected.usage.tokens
