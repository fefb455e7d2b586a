"""The pipeline from Python: submit jobs, follow them, read their results, search.

Every function takes an optional `settings`; by default the CROSSRANK_* variables decide where
Redis, Chroma and the workers are. Submitting needs only Redis: files are read here and their
records travel in the task messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from crossrank.client import CrossrankClient
from crossrank.pipeline.chunks import IndexChunk, RerankChunk, enqueue
from crossrank.pipeline.documents import (
    Document,
    LineError,
    Query,
    content_id,
    document_from,
    read_documents,
    read_queries,
)
from crossrank.pipeline.jobs import JobStatus, JobStore, new_job_id
from crossrank.pipeline.records import ResultRecord
from crossrank.pipeline.search import Hit, TwoStageRetriever
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import (
    CollectionNotFound,
    ResultsGone,
    StoreNotFound,
    check_collection_name,
    open_chroma,
    open_collection,
    results_collection_name,
)

# Depth presets, (initial_k, top_k): how many nearest passages the cross-encoder reranks, and how many
# results are kept. Deeper finds more and costs more worker time per query.
PROFILES = {"realtime": (50, 5), "document": (100, 10), "preview": (20, 3), "deep": (200, 20)}
DEFAULT_PROFILE = "realtime"
# Candidate pairs per rerank task when CROSSRANK_RERANK_CHUNK_SIZE is 0: each task's stream ends with
# a partial batch and the worker waits while the next task embeds and queries, so small tasks cost
# throughput (8 queries x 20 candidates: 74% of the worker's own pairs/s; 50 x 20: 97%).
RERANK_CHUNK_PAIRS = 1024


def _settings(settings: PipelineSettings | None) -> PipelineSettings:
    return settings or PipelineSettings.from_env()


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _line_errors(errors: list[LineError]) -> list[dict]:
    return [{"line": e.line, "message": e.message} for e in errors]


def _first_of_each_id(items: Iterable[Document | Query]) -> list:
    """The first record of each id, in input order: a repeated id would make two chunks race for the
    same records."""
    first: dict[str, Document | Query] = {}
    for item in items:
        first.setdefault(item.id, item)
    return list(first.values())


def _as_query(item: Query | dict | str, number: int) -> Query:
    if isinstance(item, Query):
        return item
    if isinstance(item, str):
        return Query(f"q{number}", item)
    return Query(str(item.get("id") or item.get("_id") or f"q{number}"), item["text"])


def _as_document(item: Document | dict | str) -> Document:
    if isinstance(item, Document):
        return item
    if isinstance(item, str):
        return Document(content_id(item), item)
    return document_from(item)


def submit_index(source: str | Path | Iterable[Document | dict | str], collection: str, *, fmt: str | None = None,
                 passage_chars: int | None = None, passage_overlap: int | None = None,
                 settings: PipelineSettings | None = None) -> str:
    """Enqueue an index job for a file (JSONL, CSV, text) or for records; returns the job id at once."""
    settings = _settings(settings)
    check_collection_name(collection)
    if isinstance(source, str | Path):
        documents, errors = read_documents(source, fmt)
    else:
        documents, errors = [_as_document(d) for d in source], []
    chars = passage_chars or settings.passage_chars
    overlap = settings.passage_overlap if passage_overlap is None else passage_overlap
    if passage_overlap is None and overlap >= chars:  # so that a small --passage-chars alone works
        overlap = chars // 5
    if not 0 <= overlap < chars:
        raise ValueError("passage overlap must be at least 0 and below the passage size")
    unique = _first_of_each_id(documents)
    skipped = len(documents) - len(unique)
    if not unique:
        raise ValueError(f"no documents to index in {source}" + (f" ({len(errors)} lines could not be read, the "
                         f"first: {errors[0]})" if errors else ""))
    job_id = new_job_id()
    messages = [IndexChunk(job_id, number, collection, chars, overlap, documents).to_message()
                for number, documents in enumerate(_chunks(unique, settings.index_chunk_size))]
    options = {"collection": collection, "passage_chars": chars, "passage_overlap": overlap}
    jobs = JobStore.from_settings(settings)
    jobs.create("index", collection, total=len(unique), chunks=len(messages), params=options,
                counts={"indexed": 0, "passages": 0, "skipped": skipped, "failed": len(errors)},
                errors=_line_errors(errors), payloads=messages, job_id=job_id)
    enqueue(settings, "index", messages)
    return job_id


def depths(profile: str | None, initial_k: int | None, top_k: int | None) -> tuple[int, int]:
    """(initial_k, top_k) from a profile, each overridden by an explicit value."""
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    base_initial, base_top = PROFILES[profile or DEFAULT_PROFILE]
    initial, top = initial_k or base_initial, top_k or base_top
    if top > initial:
        raise ValueError(f"top_k ({top}) cannot be larger than initial_k ({initial})")
    return initial, top


def submit_rerank(queries: str | Path | Iterable[Query | dict | str], collection: str, *,
                  profile: str | None = None, initial_k: int | None = None, top_k: int | None = None,
                  results_collection: str | None = None, settings: PipelineSettings | None = None) -> str:
    """Enqueue a rerank job: each query's `initial_k` nearest passages, reranked, `top_k` kept."""
    settings = _settings(settings)
    check_collection_name(collection)
    results_name = check_collection_name(results_collection or results_collection_name(collection))
    initial, top = depths(profile, initial_k, top_k)
    if isinstance(queries, str | Path):
        parsed, errors = read_queries(queries)
    else:
        parsed, errors = [_as_query(q, i) for i, q in enumerate(queries, 1)], []
    unique = _first_of_each_id(parsed)
    if not unique:
        raise ValueError("no queries to rerank" + (f" (first error: {errors[0]})" if errors else ""))
    chunk_size = settings.rerank_chunk_size or max(1, RERANK_CHUNK_PAIRS // initial)
    job_id = new_job_id()
    messages = [RerankChunk(job_id, number, collection, results_name, initial, top, queries).to_message()
                for number, queries in enumerate(_chunks(unique, chunk_size))]
    options = {"collection": collection, "results_collection": results_name, "initial_k": initial, "top_k": top,
               "profile": profile or ""}
    jobs = JobStore.from_settings(settings)
    jobs.create("rerank", collection, total=len(unique), chunks=len(messages), params=options,
                counts={"queries": 0, "pairs": 0, "records": 0, "failed": len(errors),
                        "skipped": len(parsed) - len(unique)},
                errors=_line_errors(errors), payloads=messages, job_id=job_id)
    enqueue(settings, "rerank", messages)
    return job_id


def status(job_id: str, *, settings: PipelineSettings | None = None) -> JobStatus:
    return JobStore.from_settings(_settings(settings)).get(job_id)


def list_jobs(limit: int = 20, *, settings: PipelineSettings | None = None) -> list[JobStatus]:
    return JobStore.from_settings(_settings(settings)).list(limit)


def cancel(job_id: str, *, settings: PipelineSettings | None = None) -> JobStatus:
    """Stop a queued or running job: chunks not yet started are skipped. Finished jobs are left as they are."""
    return JobStore.from_settings(_settings(settings)).cancel(job_id)


def resume(job_id: str, *, settings: PipelineSettings | None = None) -> list[int]:
    """Send again every chunk of a queued, running or stalled job that is not yet counted; returns their
    numbers (none for a finished job). A chunk that still runs somewhere runs twice, which changes nothing
    (see tasks.py)."""
    settings = _settings(settings)
    jobs = JobStore.from_settings(settings)
    job = jobs.get(job_id)
    if job.finished:  # nothing is missing, or nothing should run
        return []
    messages = jobs.pending(job_id)
    enqueue(settings, job.kind, messages)
    return [m["chunk"] for m in messages]


def wait(job_id: str, *, timeout: float | None = None, poll: float = 0.5,
         on_progress: Callable[[JobStatus], None] | None = None,
         settings: PipelineSettings | None = None) -> JobStatus:
    """Block until the job has finished (done, failed or cancelled); TimeoutError after `timeout` seconds."""
    jobs = JobStore.from_settings(_settings(settings))
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = jobs.get(job_id)
        if on_progress is not None:
            on_progress(job)
        if job.finished:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} is still {job.state} ({job.done}/{job.total}) after {timeout}s")
        time.sleep(poll)


def results(job_id: str, *, query_id: str | None = None,
            settings: PipelineSettings | None = None) -> list[ResultRecord]:
    """A rerank job's records, ordered by query id and rank."""
    settings = _settings(settings)
    job = JobStore.from_settings(settings).get(job_id)
    if job.kind != "rerank":
        raise ValueError(f"job {job_id} is an {job.kind} job; only rerank jobs have results")
    where: dict = {"job_id": job_id} if query_id is None else {"$and": [{"job_id": job_id}, {"query_id": query_id}]}
    name = job.params["results_collection"]
    try:
        collection = open_collection(open_chroma(settings, read_only=True), name)
    except StoreNotFound:
        raise
    except CollectionNotFound:  # nothing written yet (still queued, or every chunk failed), or deleted since
        if job.counts.get("records"):
            raise ResultsGone(job_id, job.counts["records"], name) from None
        return []
    found = collection.get(where=where, include=["documents", "metadatas"])
    records = [ResultRecord.from_chroma(metadata, text)
               for metadata, text in zip(found["metadatas"], found["documents"], strict=True)]
    return sorted(records, key=lambda r: (r.query_id, r.rank))


def search(query: str, collection: str, *, initial_k: int = 50, top_k: int = 5,
           settings: PipelineSettings | None = None, client: CrossrankClient | None = None) -> list[Hit]:
    """Two-stage search, synchronously and without Celery: vector search, then the cross-encoder."""
    settings = _settings(settings)
    own = client is None
    client = client or CrossrankClient(**settings.client_kwargs())
    try:
        return TwoStageRetriever(client, open_collection(open_chroma(settings, read_only=True), collection)).search(
            query, initial_k, top_k)
    finally:
        if own:
            client.close()


def summarize(records: Sequence[ResultRecord]) -> dict[str, list[ResultRecord]]:
    """Records grouped by query id, each group in rank order."""
    grouped: dict[str, list[ResultRecord]] = {}
    for r in records:
        grouped.setdefault(r.query_id, []).append(r)
    return grouped
