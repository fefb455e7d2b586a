"""The official Cohere SDK, pointed at the gateway with `base_url`, works unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import cohere
import pytest
from numpy.testing import assert_allclose

QUERY = "what is the capital of france"
DOCUMENTS = [
    "berlin is the capital of germany",
    "paris is the capital of france",
    "the stock market fell",
    "how to treat a cold",
    "beijing is the capital city of china",
]


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
