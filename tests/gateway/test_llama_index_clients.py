"""LlamaIndex's rerank postprocessors, pointed at the gateway with its token: Cohere's, Jina's and TEI's."""

from __future__ import annotations

import pytest
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.postprocessor.cohere_rerank import CohereRerank
from llama_index.postprocessor.jinaai_rerank import JinaRerank
from llama_index.postprocessor.tei_rerank import TextEmbeddingInference
from support.gateway import DOCUMENTS, QUERY, SERVED_NAME, TOKEN, assert_same_ranking


def _rerank(postprocessor) -> list[NodeWithScore]:
    return postprocessor.postprocess_nodes([NodeWithScore(node=TextNode(text=d)) for d in DOCUMENTS], query_str=QUERY)


@pytest.mark.parametrize(
    "make",
    [
        lambda url: CohereRerank(top_n=3, model=SERVED_NAME, api_key=TOKEN, base_url=url),
        lambda url: JinaRerank(top_n=3, model=SERVED_NAME, api_key=TOKEN, base_url=f"{url}/v1"),
        lambda url: TextEmbeddingInference(top_n=3, base_url=url, auth_token=f"Bearer {TOKEN}"),
    ],
    ids=["cohere", "jina", "tei"],
)
def test_postprocessor(secured_url, secured_grpc, make):
    ranked = _rerank(make(secured_url))
    assert_same_ranking(secured_grpc, [n.node.text for n in ranked], [n.score for n in ranked], top_k=3)


def test_jina_raises_the_gateways_detail(secured_url):
    """Jina's client raises the body's `detail` when it has no results."""
    jina = JinaRerank(top_n=3, model=SERVED_NAME, api_key="not-the-token", base_url=f"{secured_url}/v1")
    with pytest.raises(RuntimeError, match="wrong bearer token"):
        _rerank(jina)
