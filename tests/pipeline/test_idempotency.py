"""A chunk that runs twice leaves exactly the same records, and its job counts it once.

First the index task's body, run twice in this process against the real gRPC worker and embedded
Chroma; then real redeliveries: the same chunk message put on the queue twice for a Celery worker.
"""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose
from support.pipeline import CORPUS, QUERIES, send_chunks, wait_for

from crossrank.client import CrossrankClient
from crossrank.pipeline import api
from crossrank.pipeline.chunks import IndexChunk, RerankChunk
from crossrank.pipeline.documents import Query, document_from
from crossrank.pipeline.jobs import JobStore
from crossrank.pipeline.passages import split_passages
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import open_chroma, open_collection
from crossrank.pipeline.tasks import Resources, index_documents

DOCUMENTS = [document_from(d) for d in CORPUS]


def _snapshot(collection) -> dict:
    found = collection.get(include=["documents", "metadatas", "embeddings"])
    order = np.argsort(found["ids"])
    return {"count": collection.count(), "ids": [found["ids"][i] for i in order],
            "documents": [found["documents"][i] for i in order], "metadatas": [found["metadatas"][i] for i in order],
            "embeddings": np.array([found["embeddings"][i] for i in order])}


@pytest.fixture
def resources(redis_db, grpc_worker, tmp_path):
    settings = PipelineSettings.from_env({}, redis_url=redis_db, chroma_path=str(tmp_path / "chroma"),
                                         worker_target=grpc_worker.address, embed_batch_size=5)
    client = CrossrankClient(**settings.client_kwargs())
    r = Resources(settings, JobStore.from_settings(settings), client, open_chroma(settings))
    yield r
    client.close()
    r.jobs.redis.close()


def _index(collection: str, documents, passage_chars: int = 60, passage_overlap: int = 10) -> IndexChunk:
    return IndexChunk("job", 0, collection, passage_chars, passage_overlap, documents)


def test_the_index_body_run_twice_writes_the_same_records(resources):
    first = index_documents(resources, _index("twice", DOCUMENTS))
    collection = open_collection(resources.chroma, "twice")
    before = _snapshot(collection)
    second = index_documents(resources, _index("twice", DOCUMENTS))
    after = _snapshot(collection)

    assert first == second == {"indexed": len(DOCUMENTS), "passages": before["count"]}
    assert before["count"] == after["count"] == len(before["ids"]) == len(set(before["ids"]))
    assert before["ids"] == after["ids"] and before["documents"] == after["documents"]
    assert before["metadatas"] == after["metadatas"]
    assert_allclose(after["embeddings"], before["embeddings"], atol=1e-6)

    # What the records are: one per passage, with the document's metadata, id and passage number.
    expected = {p.id: (p.text, {**d.metadata, "doc_id": d.id, "passage": p.number})
                for d in DOCUMENTS for p in split_passages(d.id, d.text, 60, 10)}
    assert sorted(expected) == after["ids"]
    assert [expected[i] for i in after["ids"]] == list(zip(after["documents"], after["metadatas"], strict=True))
    assert before["count"] > len(DOCUMENTS)  # the long documents were split
    # The embeddings are the worker's, computed in batches of 5: the same as one call for all texts.
    direct = np.array(resources.client.embed(after["documents"]).embeddings)
    assert_allclose(after["embeddings"], direct, atol=1e-4)


def _log_lines(pipeline, pattern: str) -> int:
    return len(re.findall(pattern, pipeline.celery.output()))


def test_a_shorter_document_indexed_again_leaves_no_old_passages(resources):
    long_text = " ".join(f"sentence number {i} about rerankers." for i in range(20))
    index_documents(resources, _index("shrink", [document_from({"id": "d", "text": long_text}),
                                                 document_from({"id": "other", "text": long_text})]))
    collection = open_collection(resources.chroma, "shrink")
    before = collection.get(where={"doc_id": "d"}, include=[])["ids"]
    assert len(before) > 3

    index_documents(resources, _index("shrink", [document_from({"id": "d", "text": "now a short text"})]))
    assert collection.get(where={"doc_id": "d"}, include=["documents"])["documents"] == ["now a short text"]
    assert len(collection.get(where={"doc_id": "other"}, include=[])["ids"]) == len(before)  # untouched


def test_an_index_chunk_delivered_twice_counts_once(embedded_pipeline):
    settings = embedded_pipeline.settings
    jobs = embedded_pipeline.jobs()
    documents = DOCUMENTS
    options = {"collection": "redelivered", "passage_chars": 60, "passage_overlap": 10}
    job_id = jobs.create("index", "redelivered", total=len(documents), chunks=2, params=options,
                         counts={"indexed": 0, "passages": 0, "skipped": 0, "failed": 0})
    chunks = [IndexChunk(job_id, 0, "redelivered", 60, 10, documents[:6]),
              IndexChunk(job_id, 1, "redelivered", 60, 10, documents[6:])]
    # Chunk 0 twice before chunk 1: one consumer takes them in order, so the copy runs while the job runs.
    send_chunks(settings, [chunks[0], chunks[0], chunks[1]])
    job = api.wait(job_id, timeout=120, poll=0.2, settings=settings)

    passages = sum(len(split_passages(d.id, d.text, 60, 10)) for d in DOCUMENTS)
    assert job.state == "done" and job.done == job.total == len(documents)
    assert job.counts == {"indexed": len(documents), "passages": passages, "skipped": 0, "failed": 0}
    wait_for(lambda: _log_lines(embedded_pipeline, rf"job {job_id} chunk 0: ") == 2, 30, "both copies logged")
    assert _log_lines(embedded_pipeline, rf"job {job_id} chunk 1: ") == 1
    collection = open_collection(embedded_pipeline.chroma(), "redelivered")
    found = collection.get()
    assert collection.count() == len(found["ids"]) == len(set(found["ids"])) == passages


def test_a_rerank_chunk_delivered_twice_leaves_no_duplicates(embedded_pipeline):
    settings = embedded_pipeline.settings
    index_job = api.wait(api.submit_index(CORPUS, "rerank-twice", settings=settings), timeout=120, settings=settings)
    assert index_job.state == "done"
    passages = index_job.counts["passages"]

    jobs = embedded_pipeline.jobs()
    queries = [Query(f"q{i}", q) for i, q in enumerate(QUERIES)]
    options = {"collection": "rerank-twice", "results_collection": "rerank-twice-results", "initial_k": 8,
               "top_k": 3, "profile": ""}
    job_id = jobs.create("rerank", "rerank-twice", total=len(queries), chunks=2, params=options,
                         counts={"queries": 0, "pairs": 0, "records": 0, "failed": 0, "skipped": 0})
    chunks = [RerankChunk(job_id, 0, "rerank-twice", "rerank-twice-results", 8, 3, queries[:3]),
              RerankChunk(job_id, 1, "rerank-twice", "rerank-twice-results", 8, 3, queries[3:])]
    send_chunks(settings, [chunks[0], chunks[0], chunks[1]])
    job = api.wait(job_id, timeout=120, poll=0.2, settings=settings)

    assert passages >= 8
    assert job.state == "done" and job.done == len(queries)
    assert job.counts == {"queries": len(queries), "pairs": len(queries) * 8, "records": len(queries) * 3,
                          "failed": 0, "skipped": 0}
    wait_for(lambda: _log_lines(embedded_pipeline, rf"job {job_id} chunk 0: ") == 2, 30, "both copies logged")
    records = api.results(job_id, settings=settings)
    assert len(records) == len({(r.query_id, r.rank) for r in records}) == len(queries) * 3
    results = open_collection(embedded_pipeline.chroma(), "rerank-twice-results")
    assert results.count() == len(queries) * 3
