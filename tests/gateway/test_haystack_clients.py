"""Haystack's Jina ranker (jina-haystack), pointed at the gateway's /v1/rerank with its token."""

from __future__ import annotations

from haystack import Document
from haystack.utils import Secret
from haystack_integrations.components.rankers.jina import JinaRanker
from support.gateway import DOCUMENTS, QUERY, SERVED_NAME, TOKEN, assert_same_ranking


def test_jina_ranker(secured_url, secured_grpc):
    ranker = JinaRanker(
        model=SERVED_NAME, api_key=Secret.from_token(TOKEN), top_k=3, base_url=f"{secured_url}/v1/rerank"
    )
    out = ranker.run(query=QUERY, documents=[Document(content=d) for d in DOCUMENTS])

    assert_same_ranking(
        secured_grpc, [d.content for d in out["documents"]], [d.score for d in out["documents"]], top_k=3
    )
    # Jina's `model` and `usage`, which this ranker reads (it failed with KeyError: 'model' before).
    assert out["meta"]["model"] == SERVED_NAME and out["meta"]["usage"]["total_tokens"] > 0


def test_jina_ranker_without_top_k_sends_null_and_gets_all(secured_url, secured_grpc):
    ranker = JinaRanker(model=SERVED_NAME, api_key=Secret.from_token(TOKEN), base_url=f"{secured_url}/v1/rerank")
    out = ranker.run(query=QUERY, documents=[Document(content=d) for d in DOCUMENTS])
    assert_same_ranking(secured_grpc, [d.content for d in out["documents"]], [d.score for d in out["documents"]])
