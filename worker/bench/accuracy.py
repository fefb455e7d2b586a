"""The cost in accuracy of each precision/backend: Spearman and max |score difference| against fp32.

Each mode scores the same fixed pairs through the worker's own runtime (CrossEncoderRuntime,
the batching code's model), so the numbers are the ones a served request would get. Random
weights make such numbers meaningless: give a trained model (e.g. crossrank-minilm-l6-weak).
The pairs come from a BEIR data set when one is found (queries with their judged and random
passages), else from the synthetic workload.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np

from crossrank.worker.bench.workload import make_workload
from crossrank.worker.settings import LOSSY_BACKENDS

log = logging.getLogger(__name__)

# Each mode as (--backend, --dtype). The OpenVINO modes pin the precision: left to itself OpenVINO runs
# bf16 on a CPU with native bf16, so "openvino" would not measure the fp32 graph there.
MODE_SETTINGS = {
    "fp32": ("torch", "fp32"),
    "bf16": ("torch", "bf16"),
    "onnx": ("onnx", "fp32"),
    "onnx-int8": ("onnx-int8", "fp32"),
    "openvino": ("openvino", "fp32"),
    "openvino-bf16": ("openvino", "bf16"),
    "openvino-int8": ("openvino-int8", "fp32"),
}
MODES = tuple(MODE_SETTINGS)
# Below this rank agreement with fp32 a mode is lossy: marked so in --help and the docs, never picked by auto.
# So is a backend that `crossrank eval` measured losing more than 0.005 NDCG@10 (settings.LOSSY_BACKENDS).
LOSSLESS_SPEARMAN = 0.99


def beir_pairs(folder: Path, n_queries: int, docs_per_query: int, seed: int = 0) -> list[tuple[str, str]]:
    """Pairs of each query with its judged passages topped up with random ones, in a fixed order."""
    rng = random.Random(seed)
    queries = [json.loads(line) for line in (folder / "queries.jsonl").open(encoding="utf-8")]
    corpus = {d["_id"]: d["text"] for d in map(json.loads, (folder / "corpus.jsonl").open(encoding="utf-8"))}
    judged: dict[str, list[str]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, *_ = line.split("\t")
        if did in corpus:
            judged.setdefault(qid, []).append(did)
    ids = sorted(corpus)
    pairs = []
    for q in [q for q in queries if q["_id"] in judged][:n_queries]:
        docs = judged[q["_id"]][:docs_per_query]
        docs += rng.sample(ids, docs_per_query - len(docs))
        pairs += [(q["text"], corpus[d]) for d in docs]
    return pairs


def default_pairs(data: Path | None, n_queries: int, docs_per_query: int) -> tuple[list[tuple[str, str]], str]:
    if data is not None and (data / "queries.jsonl").exists():
        return beir_pairs(data, n_queries, docs_per_query), str(data)
    workload = make_workload(n_queries, seed=1, min_docs=docs_per_query, max_docs=docs_per_query)
    return [(q.query, d) for q in workload for d in q.documents], "synthetic workload (seed 1)"


def score_pairs(model: str, pairs: list[tuple[str, str]], dtype: str, backend: str, batch: int = 32,
                **caches: str) -> np.ndarray:
    """Raw logits of each pair, through the worker's runtime, in input order; `caches`: onnx_cache=..."""
    from crossrank.worker.engine.batcher import Batch, Ticket
    from crossrank.worker.engine.device import place
    from crossrank.worker.engine.runtime import CrossEncoderRuntime

    runtime = CrossEncoderRuntime(model, place("cpu", dtype), backend=backend, **caches)
    tickets = [Ticket(runtime.pair_tokenizer.encode(q, [d])) for q, d in pairs]
    out = []
    for i in range(0, len(tickets), batch):
        owners = np.arange(i, min(i + batch, len(tickets)))
        rows = Batch.gather(tickets, owners, np.zeros(len(owners), dtype=np.int64))
        out.append(runtime.fetch(runtime.forward(runtime.collate(rows))))
    return np.concatenate(out)


def compare(model: str, pairs: list[tuple[str, str]], modes: tuple[str, ...] = MODES,
            **caches: str) -> dict[str, dict]:
    """Per mode: Spearman against fp32, the largest |logit| and |sigmoid score| difference; or why not."""
    from scipy.stats import spearmanr

    reference = score_pairs(model, pairs, "fp32", "torch")
    results: dict[str, dict] = {}
    for mode in modes:
        backend, dtype = MODE_SETTINGS[mode]
        try:
            scores = reference if mode == "fp32" else score_pairs(model, pairs, dtype, backend, **caches)
        except Exception as exc:  # an optional backend that is not installed: say so, go on
            log.warning("accuracy mode %s unavailable: %s", mode, exc)
            results[mode] = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
            continue
        sig = lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))  # noqa: E731
        spearman = float(spearmanr(reference, scores).statistic)
        results[mode] = {
            "available": True,
            "spearman": spearman,
            "lossy": spearman < LOSSLESS_SPEARMAN or backend in LOSSY_BACKENDS,
            "max_abs_logit_diff": float(np.max(np.abs(reference - scores))),
            "max_abs_score_diff": float(np.max(np.abs(sig(reference) - sig(scores)))),
        }
    return results
