"""Scores through a real gRPC server equal sentence-transformers' CrossEncoder.predict: in one process,
and split into frontends and an engine core (`crossrank serve --frontends 2`)."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose
from support.clients import CLIENT_KINDS, open_client
from support.workers import serving_worker

QUERY_ZH = "什么是RAG技术？"
DOCS_ZH = [
    "RAG是检索增强生成技术，结合检索和生成模型",
    "向量数据库用于存储和检索高维向量",
    "大语言模型可以生成自然语言文本",
    "北京是中国的首都",
    "RAG技术可以提升问答系统的准确性",
]
QUERY_EN = "what is retrieval augmented generation"
DOCS_EN = [
    "retrieval augmented generation combines search with a language model",
    "paris is the capital of france",
    "a vector database stores embeddings for search",
    "the stock market fell on monday",
]


@dataclass
class SplitWorker:
    """A `serve --frontends 2` process; its settings and tokenizer are those of the in-process worker,
    which serves the same models with the same settings."""

    address: str
    engine: Any
    settings: Any


@pytest.fixture(scope="module", params=["one-process", pytest.param("frontends-2", marks=pytest.mark.slow)])
def worker(request, worker, tiny_cross_encoder, tiny_bi_encoder):
    if request.param == "one-process":
        yield worker
        return
    with serving_worker(tiny_cross_encoder, tiny_bi_encoder, "--frontends", "2") as process:
        yield SplitWorker(process.address, worker.engine, worker.settings)


@pytest.fixture(scope="module", params=CLIENT_KINDS)
def client(request, worker):
    with open_client(request.param, worker.address, timeout=30) as c:
        yield c


@pytest.mark.parametrize(("query", "docs"), [(QUERY_ZH, DOCS_ZH), (QUERY_EN, DOCS_EN)], ids=["zh", "en"])
@pytest.mark.parametrize("raw", [False, True], ids=["sigmoid", "raw"])
def test_scores_equal_crossencoder_predict(client, oracle, query, docs, raw):
    expected = oracle.predict([(query, d) for d in docs], activation_fn=None if not raw else _identity())
    response = client.rerank(query, docs, raw_scores=raw)
    got = np.empty(len(docs))
    for r in response.results:
        got[r.index] = r.score
    assert_allclose(got, expected, atol=1e-4)
    assert [r.index for r in response.results] == np.argsort(-expected, kind="stable").tolist()
    if not raw:
        assert all(0.0 <= r.score <= 1.0 for r in response.results)
    assert response.usage.pairs == len(docs) and response.usage.tokens > 0


def _identity():
    import torch

    return torch.nn.Identity()


def test_score_rpc_keeps_input_order(client, oracle):
    pairs = [(QUERY_EN, d) for d in DOCS_EN] + [(QUERY_ZH, d) for d in DOCS_ZH]
    response = client.score(pairs)
    assert_allclose(response.scores, oracle.predict(pairs), atol=1e-4)


def test_long_documents_are_truncated_not_refused(client, oracle):
    docs = ["stock market " * 400, "retrieval augmented generation " * 300, "短"]
    response = client.rerank(QUERY_EN, docs)
    expected = oracle.predict([(QUERY_EN, d) for d in docs])  # predict truncates the document too
    got = {r.index: r.score for r in response.results}
    assert_allclose([got[i] for i in range(3)], expected, atol=1e-4)


def test_window_mode_keeps_the_best_window(client, oracle, worker):
    document = " ".join(["the stock market fell"] * 40 + ["retrieval augmented generation"] + ["paris"] * 80)
    s = worker.engine.settings
    windows = worker.engine.pair_tokenizer.windows(QUERY_EN, document, s.window_tokens, s.window_stride)
    assert len(windows) > 3
    response = client.score([(QUERY_EN, document)], long_document="window")
    expected = oracle.predict([(QUERY_EN, w) for w in windows]).max()
    assert response.scores[0] == pytest.approx(float(expected), abs=1e-4)
    assert response.scores[0] > oracle.predict([(QUERY_EN, document)])[0] - 1e-6


def test_window_mode_with_request_window(client, oracle, worker):
    document = " ".join(["the stock market fell"] * 40 + ["retrieval augmented generation"] + ["paris"] * 80)
    windows = worker.engine.pair_tokenizer.windows(QUERY_EN, document, 32, 16)
    response = client.stream([{"query": QUERY_EN, "documents": [document, "paris"], "long_document": "window",
                               "window_tokens": 32, "window_stride": 16, "raw_scores": True}])
    (result,) = list(response)
    best = {r.index: r.score for r in result.results}[0]
    expected = oracle.predict([(QUERY_EN, w) for w in windows], activation_fn=_identity()).max()
    assert best == pytest.approx(float(expected), abs=1e-4)
    assert result.usage.pairs == len(windows) + 1


def test_batched_scores_equal_unbatched(client, oracle):
    docs = [f"document {i} about " + "retrieval " * (i % 13) for i in range(60)]
    together = client.rerank(QUERY_EN, docs)
    alone = [client.rerank(QUERY_EN, [d]).results[0].score for d in docs[:12]]
    got = {r.index: r.score for r in together.results}
    assert_allclose([got[i] for i in range(12)], alone, atol=1e-5)


def test_top_k_and_return_documents(client):
    full = client.rerank(QUERY_EN, DOCS_EN)
    top = client.rerank(QUERY_EN, DOCS_EN, top_k=2, return_documents=True)
    assert [r.index for r in top.results] == [r.index for r in full.results[:2]]
    assert [r.document for r in top.results] == [DOCS_EN[r.index] for r in top.results]
    assert all(r.document is None for r in full.results)
    scores = [r.score for r in full.results]
    assert scores == sorted(scores, reverse=True)
    assert len(client.rerank(QUERY_EN, DOCS_EN, top_k=50).results) == len(DOCS_EN)


def test_embed_equals_sentence_transformers(client, tiny_bi_encoder):
    from sentence_transformers import SentenceTransformer

    texts = ["hello world", "什么是RAG技术？", "a vector database " * 20]
    expected = SentenceTransformer(str(tiny_bi_encoder), device="cpu").encode(texts, normalize_embeddings=True)
    response = client.embed(texts, normalize=True)
    assert response.dimensions == expected.shape[1]
    assert_allclose(np.array(response.embeddings), expected, atol=1e-5)


def test_info_reports_model_and_limits(client, worker):
    info = client.info()
    assert info.model == worker.settings.model
    assert info.device == "cpu" and info.dtype == "fp32" and info.dtype_reason.startswith("--dtype fp32")
    assert info.backend != "auto" and "--backend auto: " in info.dtype_reason  # what auto picked, and why
    assert info.tokenizer_workers >= 1
    assert info.max_input_length == 128
    assert info.max_documents_per_request == worker.settings.max_documents_per_request
    assert info.embed_dimensions == 32 and info.version
