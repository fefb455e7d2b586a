"""The Chroma collection an evaluation searches: one per corpus and embedding model, reused when full.

Each document is indexed as one passage (passage size above the longest document), so a dense
ranking is a ranking of documents, as in the BEIR figures; the bi-encoder truncates long texts
itself. Indexing runs in this process, or as the pipeline's own index job with `via_jobs`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

from chromadb.api.models.Collection import Collection

from crossrank.client import CrossrankClient
from crossrank.pipeline import api
from crossrank.pipeline.documents import Document
from crossrank.pipeline.passages import split_passages
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import CollectionNotFound, open_chroma, open_collection, upsert


def collection_name(data_name: str, corpus_sha256: str, embed_model: str) -> str:
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", data_name).strip("-._")[:40] or "data"
    digest = hashlib.sha256(f"{corpus_sha256}\n{embed_model}".encode()).hexdigest()[:12]
    return f"eval-{slug}-{digest}"


def _passage_chars(documents: Sequence[Document]) -> int:
    return max(len(d.text) for d in documents) + 1


def _index_here(client: CrossrankClient, collection: Collection, settings: PipelineSettings,
                documents: Sequence[Document], on_progress: Callable[[int], None]) -> None:
    chroma = open_chroma(settings)
    size = _passage_chars(documents)
    # An interrupted run left some documents in: embed only the others.
    present = {passage_id.rsplit("#", 1)[0] for passage_id in collection.get(include=[])["ids"]}
    on_progress(len(present))
    documents = [d for d in documents if d.id not in present]
    step = settings.embed_batch_size
    for start in range(0, len(documents), step):
        batch = [p for d in documents[start:start + step] for p in split_passages(d.id, d.text, size, 0)]
        vectors = client.embed([p.text for p in batch]).embeddings
        upsert(collection, chroma, [p.id for p in batch], vectors, [p.text for p in batch],
               [{"doc_id": p.doc_id, "passage": p.number} for p in batch])
        on_progress(len(present) + min(start + step, len(documents)))


def _index_by_job(name: str, settings: PipelineSettings, documents: Sequence[Document],
                  on_progress: Callable[[int], None]) -> None:
    job_id = api.submit_index(list(documents), name, passage_chars=_passage_chars(documents), passage_overlap=0,
                              settings=settings)
    job = api.wait(job_id, on_progress=lambda j: on_progress(j.done), settings=settings)
    if job.state != "done" or job.counts.get("failed"):
        raise RuntimeError(f"index job {job_id} ended {job.state} with errors {job.errors[:1]}: see "
                           f"crossrank jobs status {job_id}")


def ensure_collection(client: CrossrankClient, settings: PipelineSettings, name: str, documents: Sequence[Document],
                      *, via_jobs: bool, on_progress: Callable[[int], None]) -> tuple[Collection, bool]:
    """The collection holding every document, indexed first unless it already does; and whether it was."""
    chroma = open_chroma(settings)
    try:
        collection = open_collection(chroma, name)
        if collection.count() == len(documents):
            return collection, False
    except CollectionNotFound:
        pass
    if via_jobs:
        _index_by_job(name, settings, documents, on_progress)
        return open_collection(open_chroma(settings), name), True
    collection = open_collection(chroma, name, create=True)
    _index_here(client, collection, settings, documents, on_progress)
    return collection, True
