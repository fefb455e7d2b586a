"""A causal-LM reranker (Qwen3-Reranker's shape) scores over gRPC as CrossEncoder.predict does.

The tiny Qwen3ForCausalLM reads each pair through a chat template and is scored by the logit of
"yes" against "no" at its last token; one batch mixes short, long and truncated pairs, so left
padding, the template's suffix and the last-token pick are all checked against the oracle.
"""

import json
import subprocess

import httpx
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sentence_transformers import CrossEncoder
from support.clients import CLIENT_KINDS, open_client
from support.tiny_models import build_causal_reranker
from support.workers import crossrank_command, worker_in_process, worker_settings

from crossrank.client import InvalidRequestError
from crossrank.worker.engine import LongDocument
from crossrank.worker.server import create_server

QUERY = "what is retrieval augmented generation"
DOCUMENTS = [
    "retrieval augmented generation combines search with a language model",
    "paris is the capital of france " * 40,  # longer than the model: truncated, template kept
    "短",
    "the stock market fell on monday " * 6,
    "a vector database stores embeddings for search",
]
LONG = " ".join(["the stock market fell"] * 40 + ["retrieval augmented generation"] + ["paris"] * 80)


@pytest.fixture(scope="module")
def causal_worker(tiny_causal_reranker):
    with worker_in_process(tiny_causal_reranker, window_tokens=48, window_stride=24, http_port=-1) as server:
        yield server


@pytest.fixture(scope="module")
def causal_oracle(tiny_causal_reranker):
    return CrossEncoder(str(tiny_causal_reranker), device="cpu")


@pytest.fixture(scope="module", params=CLIENT_KINDS)
def client(request, causal_worker):
    with open_client(request.param, causal_worker.address, timeout=30) as c:
        yield c


def _logits(oracle, pairs, **kwargs):
    return oracle.predict(pairs, activation_fn=torch.nn.Identity(), **kwargs)


def test_the_runtime_runs_the_models_own_chain(causal_worker):
    scorer = causal_worker.engine.scorer
    assert scorer.architecture == "Qwen3ForCausalLM" and scorer.task == "text-generation"
    assert scorer.pair_tokenizer.pad_left and scorer.pair_tokenizer.template is not None
    assert scorer.answer_head  # the output layer computes the "yes" and "no" rows only


@pytest.mark.parametrize("instruction", [None, "which document is code"], ids=["default", "instruction"])
def test_one_forward_over_mixed_lengths_equals_predict(causal_worker, causal_oracle, instruction):
    scorer = causal_worker.engine.scorer
    tokens = scorer.pair_tokenizer.encode(QUERY, DOCUMENTS, prompt=scorer.prompt(instruction))
    assert tokens.lengths.min() < tokens.lengths.max() == scorer.max_length  # short, long and truncated rows
    batch = scorer.collate_parts([(tokens, np.arange(len(tokens)))])
    assert batch.arrays["attention_mask"][:, 0].min() == 0  # left padding
    got = scorer.fetch(scorer.forward(batch))
    expected = _logits(causal_oracle, [(QUERY, d) for d in DOCUMENTS], prompt=instruction)
    assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("raw", [False, True], ids=["sigmoid", "raw"])
def test_rerank_equals_predict_in_one_mixed_batch(client, causal_oracle, raw):
    pairs = [(QUERY, d) for d in DOCUMENTS]
    expected = _logits(causal_oracle, pairs) if raw else causal_oracle.predict(pairs)
    response = client.rerank(QUERY, DOCUMENTS, raw_scores=raw)
    got = {r.index: r.score for r in response.results}
    assert_allclose([got[i] for i in range(len(DOCUMENTS))], expected, atol=1e-4)
    assert [r.index for r in response.results] == np.argsort(-expected, kind="stable").tolist()


def test_score_keeps_input_order_across_queries(client, causal_oracle):
    pairs = [(QUERY, d) for d in DOCUMENTS] + [("paris france", d) for d in DOCUMENTS[::-1]]
    assert_allclose(client.score(pairs).scores, causal_oracle.predict(pairs), atol=1e-4)


def test_truncation_keeps_the_templates_suffix(causal_worker, causal_oracle):
    tokenizer = causal_worker.engine.pair_tokenizer
    tokens = tokenizer.encode(QUERY, [DOCUMENTS[1]])
    suffix = tokenizer.template.frame(None).suffix
    assert tokens.total == tokenizer.max_length and len(suffix) > 0
    assert tokens.ids[-len(suffix) :].tolist() == suffix.tolist()
    features = causal_oracle.preprocess([(QUERY, DOCUMENTS[1])])
    assert tokens.ids.tolist() == features["input_ids"][0].tolist()


def test_each_window_carries_the_whole_template(client, causal_worker, causal_oracle):
    s = causal_worker.engine.settings
    tokenizer = causal_worker.engine.pair_tokenizer
    windows = tokenizer.windows(QUERY, LONG, s.window_tokens, s.window_stride)
    assert len(windows) > 3
    tokens = tokenizer.encode(QUERY, [LONG], LongDocument.WINDOW, s.window_tokens, s.window_stride)
    suffix = tokenizer.template.frame(None).suffix.tolist()
    head = tokenizer._ids([tokenizer.template.frame(None).head])[0]
    for i in range(len(tokens)):
        row = tokens.ids[tokens.offsets[i] : tokens.offsets[i + 1]].tolist()
        assert row[: len(head)] == head and row[-len(suffix) :] == suffix
    response = client.score([(QUERY, LONG)], long_document="window", raw_scores=True)
    expected = _logits(causal_oracle, [(QUERY, w) for w in windows]).max()
    assert response.scores[0] == pytest.approx(float(expected), abs=1e-4)


INSTRUCTION = "which document is code"


def test_an_instruction_equals_predicts_prompt(client, causal_oracle):
    pairs = [(QUERY, d) for d in DOCUMENTS]
    expected = causal_oracle.predict(pairs, prompt=INSTRUCTION)
    assert np.abs(expected - causal_oracle.predict(pairs)).max() > 1e-3  # the instruction reaches the model
    response = client.rerank(QUERY, DOCUMENTS, instruction=INSTRUCTION)
    got = {r.index: r.score for r in response.results}
    assert_allclose([got[i] for i in range(len(DOCUMENTS))], expected, atol=1e-4)
    assert_allclose(client.score(pairs, instruction=INSTRUCTION).scores, expected, atol=1e-4)


def test_an_instruction_rides_in_every_window(client, causal_worker, causal_oracle):
    s = causal_worker.engine.settings
    windows = causal_worker.engine.pair_tokenizer.windows(QUERY, LONG, s.window_tokens, s.window_stride, INSTRUCTION)
    assert len(windows) > 3
    (result,) = list(
        client.stream(
            [
                {
                    "query": QUERY,
                    "documents": [LONG],
                    "long_document": "window",
                    "raw_scores": True,
                    "instruction": INSTRUCTION,
                }
            ]
        )
    )
    expected = _logits(causal_oracle, [(QUERY, w) for w in windows], prompt=INSTRUCTION).max()
    assert result.results[0].score == pytest.approx(float(expected), abs=1e-4)


def test_default_prompt_picks_a_saved_prompt(tiny_causal_reranker, causal_oracle):
    pairs = [(QUERY, d) for d in DOCUMENTS]
    with (
        worker_in_process(tiny_causal_reranker, default_prompt="code") as server,
        open_client("sync", server.address, timeout=30) as c,
    ):
        assert_allclose(c.score(pairs).scores, causal_oracle.predict(pairs, prompt_name="code"), atol=1e-4)


def test_the_models_own_default_prompt_applies(tmp_path):
    path = build_causal_reranker(tmp_path / "with-default", default_prompt="web")
    oracle = CrossEncoder(str(path), device="cpu")
    assert oracle.default_prompt_name == "web"
    pairs = [(QUERY, d) for d in DOCUMENTS]
    with worker_in_process(path) as server, open_client("sync", server.address, timeout=30) as c:
        assert_allclose(c.score(pairs).scores, oracle.predict(pairs), atol=1e-4)
        assert_allclose(c.score(pairs, instruction="").scores, oracle.predict(pairs, prompt=""), atol=1e-4)


def test_an_unknown_default_prompt_is_refused_at_start(tiny_causal_reranker):
    server = create_server(worker_settings(tiny_causal_reranker, default_prompt="nope"))
    try:
        assert not server.wait_ready(120)
        assert "default_prompt 'nope' is not one of" in str(server.engine.load_error)
        assert "(code, web)" in str(server.engine.load_error)
    finally:
        server.stop(0)


def test_an_instruction_to_a_model_that_takes_none_is_invalid_argument(worker):
    with open_client("sync", worker.address, timeout=30) as c:
        with pytest.raises(InvalidRequestError, match="takes no instruction"):
            c.rerank(QUERY, DOCUMENTS, instruction=INSTRUCTION)
        with pytest.raises(InvalidRequestError, match="takes no instruction"):
            c.score([(QUERY, "paris")], instruction=INSTRUCTION)
        assert len(c.rerank(QUERY, DOCUMENTS).results) == len(DOCUMENTS)


def test_cli_rerank_sends_the_instruction(causal_worker, causal_oracle):
    args = [
        "rerank",
        "--target",
        causal_worker.address,
        QUERY,
        *[a for d in DOCUMENTS for a in ("-d", d)],
        "--instruction",
        INSTRUCTION,
        "--json",
    ]
    result = subprocess.run(crossrank_command(*args), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    got = {r["index"]: r["score"] for r in json.loads(result.stdout)["results"]}
    expected = causal_oracle.predict([(QUERY, d) for d in DOCUMENTS], prompt=INSTRUCTION)
    assert_allclose([got[i] for i in range(len(DOCUMENTS))], expected, atol=1e-4)


@pytest.mark.parametrize("instruction", [None, INSTRUCTION], ids=["default", "instruction"])
def test_http_rerank_equals_predict(causal_worker, causal_oracle, instruction):
    expected = causal_oracle.predict([(QUERY, d) for d in DOCUMENTS], prompt=instruction)
    body = {"query": QUERY, "instruction": instruction}
    with httpx.Client(base_url=f"http://127.0.0.1:{causal_worker.http_port}", timeout=30) as http:
        cohere = http.post("/v2/rerank", json={**body, "documents": DOCUMENTS})
        tei = http.post("/rerank", json={**body, "texts": DOCUMENTS})
    assert cohere.status_code == 200 and tei.status_code == 200, (cohere.text, tei.text)
    for results, key in ((cohere.json()["results"], "relevance_score"), (tei.json(), "score")):
        got = {r["index"]: r[key] for r in results}
        assert_allclose([got[i] for i in range(len(DOCUMENTS))], expected, atol=1e-4)


def test_an_instruction_that_leaves_no_room_for_the_document_is_invalid_argument(client):
    with pytest.raises(InvalidRequestError, match="shorten the instruction"):
        client.rerank(QUERY, DOCUMENTS, instruction="which document is code " * 40)
