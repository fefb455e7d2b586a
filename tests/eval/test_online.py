"""`crossrank eval` against a real worker (tiny random models) and real embedded Chroma."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from support.evaluation import run_eval

from crossrank.pipeline.evaluation.beir import load_beir

STAGES = ["dense", "dense+rerank", "bm25", "bm25+rerank", "hybrid", "hybrid+rerank"]


@pytest.fixture(scope="module")
def env(worker, tmp_path_factory) -> dict[str, str]:
    return {"CROSSRANK_WORKER_TARGET": worker.address,
            "CROSSRANK_CHROMA_PATH": str(tmp_path_factory.mktemp("eval-chroma") / "chroma")}


def _json(*args: str, env: dict[str, str]) -> dict:
    result = run_eval(*args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_stage_alone_and_reranked_as_the_models_rank(beir, env, worker, oracle, tiny_bi_encoder):
    from sentence_transformers import SentenceTransformer

    report = _json(str(beir), "--initial-k", "4", env=env)
    assert [row["stage"] for row in report["rows"]] == STAGES
    assert report["worker"]["model"] == worker.engine.info().model
    assert report["indexed"] is True and report["data"]["queries"] == 3
    data = load_beir(beir)
    rows = {row["stage"]: row for row in report["rows"]}
    texts = {d.id: d.text for d in data.documents}
    # Dense: documents by cosine similarity of the bi-encoder, computed here by sentence-transformers.
    bi_encoder = SentenceTransformer(str(tiny_bi_encoder), device="cpu")
    doc_ids = list(texts)
    doc_vectors = bi_encoder.encode([texts[d] for d in doc_ids], normalize_embeddings=True)
    for q, text in data.queries.items():
        similarity = doc_vectors @ bi_encoder.encode([text], normalize_embeddings=True)[0]
        assert rows["dense"]["rankings"][q] == [doc_ids[i] for i in np.argsort(-similarity, kind="stable")[:4]]
        # Reranked: the same candidates in the order of sentence-transformers' CrossEncoder.predict.
        for stage in ("dense", "bm25", "hybrid"):
            candidates, reranked = rows[stage]["rankings"][q], rows[f"{stage}+rerank"]["rankings"][q]
            assert sorted(reranked) == sorted(candidates) and len(candidates) == 4
            scores = oracle.predict([(text, texts[d]) for d in reranked])
            assert all(scores[i] >= scores[i + 1] - 1e-5 for i in range(3)), (stage, q, scores)
    assert report["pairs_scored"] <= 3 * 8
    assert rows["bm25"]["rankings"]["q1"][0] == "paris"  # the only document sharing "france" and "capital"
    assert set(rows["dense"]["per_query"]) == {"q1", "q2", "q4"}


def test_a_second_run_reuses_the_collection_and_fits_80_columns(beir, env, tmp_path):
    first = _json(str(beir), "--initial-k", "4", "--first-stage", "dense", env=env)
    result = run_eval(str(beir), "--initial-k", "4", "--first-stage", "dense,bm25", "--out", str(tmp_path / "out"),
                      env={**env, "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "dense+rerank" in result.stdout and "NDCG@10" in result.stdout
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["indexed"] is False and first["indexed"] is False  # the first test indexed it
    assert saved["rows"][:2] == first["rows"]
    with open(tmp_path / "out" / "per_query.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 * 3 and {r["stage"] for r in table} == {"dense", "dense+rerank", "bm25", "bm25+rerank"}
    assert (tmp_path / "out" / "ndcg.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_sweep_cuts_the_deepest_ranking_at_each_depth(beir, env, tmp_path):
    swept = _json(str(beir), "--sweep", "initial_k=4,2", "--first-stage", "dense,hybrid", "--out",
                  str(tmp_path / "sweep"), env=env)
    assert [(r["stage"], r["initial_k"]) for r in swept["rows"]] == [
        ("dense", 2), ("dense+rerank", 2), ("dense", 4), ("dense+rerank", 4),
        ("hybrid", 2), ("hybrid+rerank", 2), ("hybrid", 4), ("hybrid+rerank", 4)]
    single = _json(str(beir), "--initial-k", "4", "--first-stage", "dense,hybrid", env=env)
    by_key = {(r["stage"], r["initial_k"]): r for r in single["rows"]}
    for row in swept["rows"]:
        if row["initial_k"] == 4:
            assert row["rankings"] == by_key[(row["stage"], 4)]["rankings"]
            assert row["metrics"] == pytest.approx(by_key[(row["stage"], 4)]["metrics"], abs=1e-6)
    assert (tmp_path / "sweep" / "ndcg.png").stat().st_size > 1000


def test_an_interrupted_index_is_completed(beir, env, worker):
    from crossrank.client import CrossrankClient
    from crossrank.pipeline.evaluation.collection import collection_name
    from crossrank.pipeline.settings import PipelineSettings
    from crossrank.pipeline.store import open_chroma, open_collection

    data = load_beir(beir)
    with CrossrankClient(worker.address) as client:
        name = collection_name(data.name, data.corpus_sha256, client.info().embed_model)
    collection = open_collection(open_chroma(PipelineSettings.from_env(env)), name, create=True)
    before = collection.get(ids=["paris#0", "tea#0"], include=["embeddings"])["embeddings"]
    collection.delete(ids=["paris#0", "tea#0"])
    report = _json(str(beir), "--initial-k", "4", "--first-stage", "dense", env=env)
    assert report["indexed"] is True and collection.count() == 10
    after = collection.get(ids=["paris#0", "tea#0"], include=["embeddings"])["embeddings"]
    assert np.allclose(before, after, atol=1e-5)
