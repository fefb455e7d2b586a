"""LangChain's rerankers, pointed at the gateway with its token: Cohere's (langchain-cohere) and the
vLLM-style HTTP reranker of langchain-reranker, on vLLM's /rerank and its Jina-style /v1/rerank."""

from __future__ import annotations

import cohere
import pytest
from langchain_cohere import CohereRerank
from langchain_core.documents import Document
from langchain_reranker.rerankers import HttpReranker
from support.gateway import DOCUMENTS, QUERY, SERVED_NAME, TOKEN, assert_same_ranking


def test_cohere_rerank(secured_url, secured_grpc):
    reranker = CohereRerank(cohere_api_key=TOKEN, base_url=secured_url, model=SERVED_NAME, top_n=3)
    ranked = reranker.compress_documents([Document(page_content=d) for d in DOCUMENTS], QUERY)

    assert_same_ranking(
        secured_grpc, [d.page_content for d in ranked], [d.metadata["relevance_score"] for d in ranked], top_k=3
    )


@pytest.mark.parametrize("base", ["", "/v1"])
def test_http_reranker_on_vllms_routes(secured_url, secured_grpc, base):
    reranker = HttpReranker(model=SERVED_NAME, base_url=secured_url + base, api_key=TOKEN, top_n=3)
    ranked = reranker.rerank(QUERY, [Document(page_content=d) for d in DOCUMENTS])

    assert_same_ranking(
        secured_grpc, [r.document.page_content for r in ranked], [r.relevance_score for r in ranked], top_k=3
    )


def test_a_wrong_token_is_refused(secured_url):
    reranker = CohereRerank(cohere_api_key="not-the-token", base_url=secured_url, model=SERVED_NAME)
    with pytest.raises(cohere.errors.UnauthorizedError, match="wrong bearer token"):
        reranker.compress_documents([Document(page_content=d) for d in DOCUMENTS], QUERY)
