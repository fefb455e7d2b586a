"""--torch-graph traced: scores equal CrossEncoder.predict, through the runtime and a real worker; a model
the trace would change, or that is no sequence classifier, is refused at start in one line. --torch-graph
auto (the default) traces on a CPU, and runs such a model eager instead, saying why."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from crossrank.worker.engine.device import place
from crossrank.worker.engine.runtime import CrossEncoderRuntime
from crossrank.worker.engine.traced_graph import TracedClassifier
from crossrank.worker.errors import ModelRefusedError

QUERY = "what is retrieval augmented generation"
DOCS = [
    "retrieval augmented generation combines search with a language model",
    "paris is the capital of france",
    "a vector database stores embeddings for search " * 3,
    "什么是RAG技术？ RAG是检索增强生成技术",
    "rank " * 90,
]


def _scores(runtime, pairs, size):
    """Batches of `size` mixed-length pairs, as the worker forms and pads them."""
    out = []
    for i in range(0, len(pairs), size):
        tokens = [runtime.pair_tokenizer.encode(q, [d]) for q, d in pairs[i:i + size]]
        parts = [(t, np.arange(len(t))) for t in tokens]
        out.append(runtime.fetch(runtime.forward(runtime.collate_parts(parts))))
    return np.concatenate(out)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_traced_scores_equal_eager_and_predict(tiny_cross_encoder, oracle, dtype):
    traced = CrossEncoderRuntime(str(tiny_cross_encoder), place("cpu", dtype), torch_graph="traced")
    eager = CrossEncoderRuntime(str(tiny_cross_encoder), place("cpu", dtype), torch_graph="eager")
    assert traced.traced is not None and eager.traced is None
    assert (traced.graph, eager.graph) == ("traced", "eager")
    pairs = [(QUERY, d) for d in DOCS] * 3
    for size in (1, 4, 7):
        got = _scores(traced, pairs, size)
        assert_allclose(got, _scores(eager, pairs, size), atol=1e-5)
        if dtype == "fp32":
            assert_allclose(got, oracle.predict(pairs, activation_fn=torch.nn.Identity()), atol=1e-4)


def test_a_causal_reranker_is_refused_in_one_line(tiny_causal_reranker):
    with pytest.raises(ModelRefusedError, match=r"^--torch-graph traced serves sequence classifiers") as refused:
        CrossEncoderRuntime(str(tiny_causal_reranker), place("cpu", "fp32"), torch_graph="traced")
    assert "\n" not in str(refused.value) and "--torch-graph eager" in str(refused.value)


def _off_on_other_shapes(monkeypatch):
    """As a model whose Python branches on a shape would trace: right on its own batch, wrong on others."""
    call = TracedClassifier.__call__
    traced_on = []  # the first batch checked is the one traced on

    def off_on_other_shapes(self, inputs):
        scores = call(self, inputs)
        traced_on[:] = traced_on or [inputs["input_ids"].shape]
        return scores if inputs["input_ids"].shape == traced_on[0] else scores + 0.5

    monkeypatch.setattr(TracedClassifier, "__call__", off_on_other_shapes)


def test_a_trace_that_scores_otherwise_is_refused(tiny_cross_encoder, monkeypatch):
    _off_on_other_shapes(monkeypatch)
    with pytest.raises(ModelRefusedError, match="serve it with --torch-graph eager"):
        CrossEncoderRuntime(str(tiny_cross_encoder), place("cpu", "fp32"), torch_graph="traced")


def test_auto_traces_a_classifier_on_a_cpu(tiny_cross_encoder):
    runtime = CrossEncoderRuntime(str(tiny_cross_encoder), place("cpu", "fp32"))  # auto: the default
    assert runtime.traced is not None
    assert runtime.graph == "traced (auto: on a CPU, its scores equal eager's)"


def test_auto_runs_eager_where_the_trace_scores_otherwise_and_says_why(tiny_cross_encoder, monkeypatch, oracle):
    _off_on_other_shapes(monkeypatch)
    runtime = CrossEncoderRuntime(str(tiny_cross_encoder), place("cpu", "fp32"), torch_graph="auto")
    assert runtime.traced is None
    assert runtime.graph.startswith("eager (auto: ") and "away from eager on batches of other shapes" in runtime.graph
    pairs = [(QUERY, d) for d in DOCS]
    assert_allclose(_scores(runtime, pairs, 4), oracle.predict(pairs, activation_fn=torch.nn.Identity()), atol=1e-4)


def test_auto_runs_a_causal_reranker_eager(tiny_causal_reranker):
    runtime = CrossEncoderRuntime(str(tiny_causal_reranker), place("cpu", "fp32"), torch_graph="auto")
    assert runtime.traced is None and "serves sequence classifiers" in runtime.graph


@pytest.fixture(scope="module")
def traced_worker(tiny_cross_encoder):
    from support.workers import worker_in_process

    with worker_in_process(tiny_cross_encoder, torch_graph="traced", max_batch_pairs=4) as server:
        yield server


def test_served_scores_and_windows_equal_predict(traced_worker, oracle):
    from support.clients import open_client

    with open_client("sync", traced_worker.address, timeout=30) as client:
        expected = oracle.predict([(QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity())
        got = {r.index: r.score for r in client.rerank(QUERY, DOCS, raw_scores=True).results}
        assert_allclose([got[i] for i in range(len(DOCS))], expected, atol=1e-4)
        document = " ".join(["the stock market fell"] * 40 + ["retrieval augmented generation"] + ["paris"] * 80)
        windows = traced_worker.engine.pair_tokenizer.windows(QUERY, document, 32, 16)
        (result,) = client.stream([{"query": QUERY, "documents": [document], "long_document": "window",
                                    "window_tokens": 32, "window_stride": 16}])
        assert result.results[0].score == pytest.approx(float(oracle.predict([(QUERY, w) for w in windows]).max()),
                                                        abs=1e-4)
    assert traced_worker.engine.scorer.traced is not None
