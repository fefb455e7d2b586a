"""The whole flow on embedded Chroma: `crossrank index` of 5,000 MS MARCO passages, a rerank job over
its 50 queries, and everything that reads the outcome (status, results, search), through the CLI and
the Python API. One Celery worker and one gRPC worker serve the module.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose
from support.pipeline import MSMARCO, read_jsonl

from crossrank import pipeline
from crossrank.client import CrossrankClient
from crossrank.pipeline.passages import split_passages
from crossrank.pipeline.search import TwoStageRetriever
from crossrank.pipeline.store import open_collection

pytestmark = pytest.mark.slow  # end to end, with real processes: `pytest -m 'not slow'` skips it

INITIAL_K, TOP_K = 10, 3
RECORD_KEYS = {"job_id", "query_id", "query", "rank", "initial_rank", "score", "doc_id", "passage_id", "text", "model"}


@pytest.fixture(scope="module")
def msmarco(embedded_pipeline):
    """The index job and the rerank job, run once through the CLI with --wait --json."""
    corpus, queries = MSMARCO / "corpus.jsonl", MSMARCO / "queries.jsonl"
    if not (corpus.exists() and queries.exists()):
        pytest.skip(f"{MSMARCO} is not there")
    index = embedded_pipeline.cli_json("index", str(corpus), "--collection", "msmarco", "--wait")
    rerank = embedded_pipeline.cli_json("jobs", "rerank", "--collection", "msmarco", "--queries", str(queries),
                                        "--initial-k", str(INITIAL_K), "--top-k", str(TOP_K), "--wait")
    return {"index": index, "rerank": rerank, "corpus": read_jsonl(corpus), "queries": read_jsonl(queries),
            "pipeline": embedded_pipeline}


@pytest.fixture(scope="module")
def client(grpc_worker):
    with CrossrankClient(grpc_worker.address, timeout=60) as c:
        yield c


def test_the_index_job_indexed_every_passage(msmarco):
    job, corpus = msmarco["index"], msmarco["corpus"]
    unique = {row["_id"]: row for row in corpus}
    passages = sum(len(split_passages(i, row["text"], 1000, 200)) for i, row in unique.items())
    assert job["kind"] == "index" and job["state"] == "done" and job["collection"] == "msmarco"
    assert job["progress"] == {"done": len(unique), "total": len(unique)}
    assert job["counts"] == {"indexed": len(unique), "passages": passages, "skipped": len(corpus) - len(unique),
                             "failed": 0}
    assert job["errors"] == [] and job["error_count"] == 0
    assert job["started_at"] <= job["finished_at"] and job["elapsed_s"] > 0
    assert set(job["throughput"]) == {"documents_per_s", "passages_per_s"}
    assert job["throughput"]["documents_per_s"] > 0

    collection = open_collection(msmarco["pipeline"].chroma(), "msmarco")
    assert collection.count() == passages
    found = collection.get(include=["metadatas", "documents"])
    assert {m["doc_id"] for m in found["metadatas"]} == set(unique)
    one = found["ids"].index(f"{corpus[0]['_id']}#0")
    assert found["documents"][one] == split_passages("x", corpus[0]["text"], 1000, 200)[0].text


def test_jobs_status_reports_the_finished_rerank_job(msmarco):
    job = msmarco["pipeline"].cli_json("jobs", "status", msmarco["rerank"]["id"])
    n = len(msmarco["queries"])
    assert job["kind"] == "rerank" and job["state"] == "done"
    assert job["progress"] == {"done": n, "total": n}
    assert job["counts"] == {"queries": n, "pairs": n * INITIAL_K, "records": n * TOP_K, "failed": 0, "skipped": 0}
    assert job["params"] == {"collection": "msmarco", "results_collection": "msmarco-results",
                             "initial_k": INITIAL_K, "top_k": TOP_K, "profile": ""}
    assert set(job["throughput"]) == {"queries_per_s", "pairs_per_s"}
    assert job["throughput"]["pairs_per_s"] == pytest.approx(INITIAL_K * job["throughput"]["queries_per_s"], rel=0.01)
    assert job["errors"] == [] and job["finished_at"] >= job["started_at"] >= job["created_at"]
    # The status read later is the status --wait printed.
    assert {k: v for k, v in job.items() if k != "elapsed_s"} == {
        k: v for k, v in msmarco["rerank"].items() if k != "elapsed_s"}


def test_rerank_records_are_complete_and_ranked(msmarco):
    settings = msmarco["pipeline"].settings
    job_id = msmarco["rerank"]["id"]
    records = pipeline.results(job_id, settings=settings)
    queries = {q["_id"]: q["text"] for q in msmarco["queries"]}
    assert len(records) == len(queries) * TOP_K
    by_query: dict[str, list] = {}
    for r in records:
        by_query.setdefault(r.query_id, []).append(r)
    assert by_query.keys() == queries.keys()
    for query_id, group in by_query.items():
        assert [r.rank for r in group] == list(range(1, TOP_K + 1))
        scores = [r.score for r in group]
        assert scores == sorted(scores, reverse=True)
        initial = [r.initial_rank for r in group]
        assert all(1 <= i <= INITIAL_K for i in initial) and len(set(initial)) == TOP_K
        for r in group:
            assert r.job_id == job_id and r.query == queries[query_id] and r.model
            assert r.passage_id.split("#")[0] == r.doc_id

    # Each record's text is its passage in the indexed collection.
    collection = open_collection(msmarco["pipeline"].chroma(), "msmarco")
    ids = sorted({r.passage_id for r in records})
    stored = dict(zip(*(lambda f: (f["ids"], f["documents"]))(collection.get(ids=ids)), strict=True))
    assert all(stored[r.passage_id] == r.text for r in records)


def test_record_scores_equal_a_direct_rerank_call(msmarco, client):
    records = pipeline.results(msmarco["rerank"]["id"], settings=msmarco["pipeline"].settings)
    for group in pipeline.api.summarize(records).values():
        direct = client.rerank(group[0].query, [r.text for r in group])
        by_index = {d.index: d.score for d in direct.results}
        assert_allclose([r.score for r in group], [by_index[i] for i in range(len(group))], atol=1e-5)
        # The direct call ranks them the same (MS MARCO has duplicate passages: equal scores may swap).
        assert_allclose([d.score for d in direct.results], [r.score for r in group], atol=1e-5)


def test_initial_ranks_follow_the_vector_distance(msmarco, client):
    """Each record keeps its passage's embedding: a lower initial rank is a nearer passage."""
    job_id = msmarco["rerank"]["id"]
    chroma = msmarco["pipeline"].chroma()
    results = open_collection(chroma, "msmarco-results").get(where={"job_id": job_id},
                                                              include=["metadatas", "embeddings"])
    assert len(results["ids"]) == len(msmarco["queries"]) * TOP_K
    queries = {q["_id"]: q["text"] for q in msmarco["queries"]}
    vectors = dict(zip(queries, np.array(client.embed(list(queries.values())).embeddings), strict=True))
    passages = open_collection(chroma, "msmarco").get(ids=sorted({m["passage_id"] for m in results["metadatas"]}),
                                                       include=["embeddings"])
    passage_vectors = dict(zip(passages["ids"], np.array(passages["embeddings"]), strict=True))
    per_query: dict[str, list[tuple[int, float]]] = {}
    for meta, embedding in zip(results["metadatas"], np.array(results["embeddings"]), strict=True):
        assert_allclose(embedding, passage_vectors[meta["passage_id"]], atol=1e-6)
        v = vectors[meta["query_id"]]
        distance = 1 - float(embedding @ v / np.linalg.norm(embedding) / np.linalg.norm(v))
        per_query.setdefault(meta["query_id"], []).append((meta["initial_rank"], distance))
    for found in per_query.values():
        distances = [d for _, d in sorted(found)]
        assert all(a <= b + 1e-5 for a, b in zip(distances, distances[1:], strict=False)), found


def test_jobs_results_for_one_query(msmarco):
    p, job_id = msmarco["pipeline"], msmarco["rerank"]["id"]
    query = msmarco["queries"][7]
    out = p.cli_json("jobs", "results", job_id, "--query", query["_id"])
    assert [r["rank"] for r in out] == list(range(1, TOP_K + 1))
    assert all(set(r) == RECORD_KEYS and r["query_id"] == query["_id"] and r["query"] == query["text"] for r in out)
    expected = [r for r in pipeline.results(job_id, settings=p.settings) if r.query_id == query["_id"]]
    assert [(r["passage_id"], r["score"], r["initial_rank"]) for r in out] == [
        (r.passage_id, r.score, r.initial_rank) for r in expected]

    table = p.cli("jobs", "results", job_id, "--query", query["_id"])
    assert table.returncode == 0, table.stderr
    assert query["text"] in table.stdout and f"{out[0]['score']:.4f}" in table.stdout
    assert p.cli_json("jobs", "results", job_id, "--query", "no-such-query") == []


def test_jobs_list_shows_both_jobs_most_recent_first(msmarco):
    listed = msmarco["pipeline"].cli_json("jobs", "list")
    ids = [j["id"] for j in listed]
    rerank, index = msmarco["rerank"]["id"], msmarco["index"]["id"]
    assert rerank in ids and index in ids and ids.index(rerank) < ids.index(index)
    table = msmarco["pipeline"].cli("jobs", "list")
    assert table.returncode == 0 and rerank in table.stdout and "done" in table.stdout


def test_search_cli_prints_ranked_hits(msmarco):
    query = msmarco["queries"][0]
    hits = msmarco["pipeline"].cli_json("search", query["text"], "--collection", "msmarco",
                                        "--initial-k", str(INITIAL_K), "--top-k", str(TOP_K))
    assert [h["rank"] for h in hits] == list(range(1, TOP_K + 1))
    assert all(set(h) == {"rank", "initial_rank", "score", "passage_id", "doc_id", "text", "metadata"} for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert all(1 <= h["initial_rank"] <= INITIAL_K and h["metadata"]["doc_id"] == h["doc_id"] for h in hits)
    # The same query, depths and collection as in the rerank job: the passages both found score the same.
    job = {r.passage_id: r.score for r in pipeline.results(msmarco["rerank"]["id"], query_id=query["_id"],
                                                             settings=msmarco["pipeline"].settings)}
    shared = [h for h in hits if h["passage_id"] in job]
    assert shared
    assert_allclose([h["score"] for h in shared], [job[h["passage_id"]] for h in shared], atol=1e-4)

    table = msmarco["pipeline"].cli("search", query["text"], "--collection", "msmarco",
                                    "--initial-k", str(INITIAL_K), "--top-k", str(TOP_K))
    assert table.returncode == 0 and "initial" in table.stdout and hits[0]["doc_id"] in table.stdout


def test_two_stage_search_as_a_library_call(msmarco, client):
    settings = msmarco["pipeline"].settings
    query = msmarco["queries"][3]["text"]
    hits = pipeline.search(query, "msmarco", initial_k=20, top_k=5, settings=settings)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(1 <= h.initial_rank <= 20 for h in hits) and len({h.initial_rank for h in hits}) == 5
    assert all(h.passage_id.startswith(f"{h.doc_id}#") and h.metadata["doc_id"] == h.doc_id for h in hits)
    direct = client.rerank(query, [h.text for h in hits])
    assert_allclose([h.score for h in hits], [d.score for d in sorted(direct.results, key=lambda d: d.index)],
                    atol=1e-5)

    # The class itself, with a client the caller owns: the initial ranks are the vector search's order.
    retriever = TwoStageRetriever(client, open_collection(msmarco["pipeline"].chroma(), "msmarco"))
    everything = retriever.search(query, initial_k=20, top_k=20)
    assert sorted(h.initial_rank for h in everything) == list(range(1, 21))
    vector_order = retriever.collection.query(query_embeddings=client.embed([query]).embeddings, n_results=20)
    assert [h.passage_id for h in sorted(everything, key=lambda h: h.initial_rank)] == vector_order["ids"][0]
    assert_allclose([h.score for h in everything[:5]], [h.score for h in hits], atol=1e-5)


def test_index_prints_the_job_id_at_once_and_status_can_watch_it(msmarco, tmp_path):
    p = msmarco["pipeline"]
    docs = tmp_path / "more.jsonl"
    docs.write_text("".join(json.dumps({"id": f"m{i}", "text": f"document number {i}"}) + "\n" for i in range(20)),
                    encoding="utf-8")
    submitted = p.cli_json("index", str(docs), "--collection", "more-docs")
    assert set(submitted) == {"job_id"}
    watched = p.cli("jobs", "status", submitted["job_id"], "--watch")
    assert watched.returncode == 0, watched.stderr
    assert "done" in watched.stdout and "20/20" in watched.stdout
    assert pipeline.status(submitted["job_id"], settings=p.settings).state == "done"


def test_pipeline_logs_are_json_lines_with_task_and_job_ids(msmarco):
    """The module's Celery worker runs with CROSSRANK_JSON_LOGS: each chunk's line names its job."""
    job_id = msmarco["rerank"]["id"]
    entries = [json.loads(line) for line in msmarco["pipeline"].celery.output().splitlines() if line.startswith("{")]
    chunks = [e for e in entries if e.get("job_id") == job_id]
    assert chunks, "no log line carries the rerank job's id"
    assert sum(e["pairs"] for e in chunks) == msmarco["rerank"]["counts"]["pairs"]
    assert all(e["task"] == "crossrank.rerank_chunk" and e["task_id"] and e["chunk"] >= 0 for e in chunks)
