"""The same flow against a `chroma run` server, with a worker started by Celery's own command.

Small chunks, batches and passages (through the CROSSRANK_* variables) make many tasks out of a small
bilingual corpus. `--profile document` asks for 100 candidates, more than the collection holds, so
every passage is a candidate and the initial ranks can be checked against exact distances.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from numpy.testing import assert_allclose
from support.pipeline import CORPUS, QUERIES, ChromaServer, Pipeline, base_env, flush_db, start_celery

from crossrank import pipeline
from crossrank.client import CrossrankClient
from crossrank.pipeline.documents import content_id
from crossrank.pipeline.passages import split_passages
from crossrank.pipeline.store import open_collection

pytestmark = pytest.mark.slow  # end to end, with real processes: `pytest -m 'not slow'` skips it

PASSAGE_CHARS, OVERLAP = 60, 15


@pytest.fixture(scope="module")
def server_pipeline(redis_db, grpc_worker, tmp_path_factory):
    root = tmp_path_factory.mktemp("server-pipeline")
    chroma = ChromaServer(root / "chroma", root / "chroma.log")
    try:
        chroma.wait_ready()
        env = base_env(CROSSRANK_REDIS_URL=redis_db, CROSSRANK_CHROMA_URL=chroma.url,
                       CROSSRANK_WORKER_TARGET=grpc_worker.address, CROSSRANK_INDEX_CHUNK_SIZE="3",
                       CROSSRANK_RERANK_CHUNK_SIZE="2", CROSSRANK_EMBED_BATCH_SIZE="4",
                       CROSSRANK_PASSAGE_CHARS=str(PASSAGE_CHARS), CROSSRANK_PASSAGE_OVERLAP=str(OVERLAP),
                       # A path that must stay unused: everything goes to the server.
                       CROSSRANK_CHROMA_PATH=str(root / "unused"))
        flush_db()
        worker = start_celery(env, root, entry="celery")
        try:
            yield Pipeline(env, worker)
        finally:
            worker.stop()
        assert not (root / "unused").exists()
    finally:
        chroma.stop()


@pytest.fixture(scope="module")
def flow(server_pipeline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server-flow")
    corpus = folder / "corpus.csv"
    with open(corpus, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "lang"])
        for doc in CORPUS:
            writer.writerow([doc.get("id", ""), doc["text"], doc.get("metadata", {}).get("lang", "")])
    queries = folder / "queries.txt"
    queries.write_text("\n".join(QUERIES) + "\n", encoding="utf-8")
    index = server_pipeline.cli_json("index", str(corpus), "--collection", "bilingual", "--wait")
    rerank = server_pipeline.cli_json("jobs", "rerank", "--collection", "bilingual", "--queries", str(queries),
                                      "--profile", "document", "--results-collection", "bilingual-ranked", "--wait")
    return index, rerank


@pytest.fixture(scope="module")
def client(grpc_worker):
    with CrossrankClient(grpc_worker.address, timeout=60) as c:
        yield c


def _expected_passages() -> dict[str, str]:
    return {p.id: p.text for d in CORPUS
            for p in split_passages(d.get("id") or content_id(d["text"]), d["text"], PASSAGE_CHARS, OVERLAP)}


def test_index_through_the_server(server_pipeline, flow):
    index, _ = flow
    expected = _expected_passages()
    assert index["state"] == "done" and index["progress"] == {"done": len(CORPUS), "total": len(CORPUS)}
    assert index["counts"] == {"indexed": len(CORPUS), "passages": len(expected), "skipped": 0, "failed": 0}
    assert index["params"] == {"collection": "bilingual", "passage_chars": PASSAGE_CHARS, "passage_overlap": OVERLAP}
    collection = open_collection(server_pipeline.chroma(), "bilingual")
    found = collection.get(include=["documents", "metadatas"])
    assert dict(zip(found["ids"], found["documents"], strict=True)) == expected
    langs = {m["doc_id"]: m.get("lang") for m in found["metadatas"]}
    assert langs["beijing-zh"] == "zh" and langs["paris-en"] == "en"
    assert langs[content_id(CORPUS[-1]["text"])] is None  # an empty cell is no metadata
    assert 10 < len(expected) < 100  # every passage is a candidate of --profile document
    # 4 chunks of at most 3 documents each, all counted once.
    assert server_pipeline.jobs().get(index["id"]).chunks_done == 4


def test_rerank_through_the_server(server_pipeline, flow, client):
    _, rerank = flow
    passages = len(_expected_passages())
    n = len(QUERIES)
    assert rerank["state"] == "done" and rerank["progress"] == {"done": n, "total": n}
    assert rerank["counts"] == {"queries": n, "pairs": n * passages, "records": n * 10, "failed": 0, "skipped": 0}
    assert rerank["params"]["initial_k"] == 100 and rerank["params"]["top_k"] == 10
    assert rerank["params"]["results_collection"] == "bilingual-ranked"

    settings = server_pipeline.settings
    records = pipeline.results(rerank["id"], settings=settings)
    assert len(records) == n * 10
    collection = open_collection(server_pipeline.chroma(), "bilingual")
    everything = collection.get(include=["documents", "embeddings"])
    vectors = np.array(everything["embeddings"])
    position = {pid: i for i, pid in enumerate(everything["ids"])}
    for group in pipeline.api.summarize(records).values():
        query = group[0].query
        assert query in QUERIES and group[0].query_id == f"q{QUERIES.index(query) + 1}"
        assert [r.rank for r in group] == list(range(1, 11))
        assert [r.score for r in group] == sorted((r.score for r in group), reverse=True)
        # Every passage was a candidate: the worker ranking all of them gives the same top 10 scores.
        direct = client.rerank(query, everything["documents"], top_k=10)
        assert_allclose([r.score for r in group], [d.score for d in direct.results], atol=1e-5)
        # The initial rank is the passage's place in the exact cosine order (ties share a distance).
        v = np.array(client.embed([query]).embeddings[0])
        distances = 1 - vectors @ v / np.linalg.norm(vectors, axis=1) / np.linalg.norm(v)
        ordered = np.sort(distances)
        for r in group:
            assert distances[position[r.passage_id]] == pytest.approx(ordered[r.initial_rank - 1], abs=1e-5)
            assert r.text == everything["documents"][position[r.passage_id]]


def test_results_and_status_through_the_cli(server_pipeline, flow):
    _, rerank = flow
    out = server_pipeline.cli_json("jobs", "results", rerank["id"], "--query", "q2")
    assert len(out) == 10 and {r["query"] for r in out} == {QUERIES[1]}
    status = server_pipeline.cli("jobs", "status", rerank["id"])
    assert status.returncode == 0
    assert "initial_k 100, top_k 10 -> bilingual-ranked" in status.stdout and "pairs/s" in status.stdout


def test_library_search_through_the_server(server_pipeline, flow, client):
    hits = pipeline.search("北京是中国的首都", "bilingual", initial_k=100, top_k=3, settings=server_pipeline.settings,
                           client=client)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert client.info().model  # the caller's client is still open after the call
