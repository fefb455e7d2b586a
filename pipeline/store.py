"""Chroma: an embedded store when one process writes, a `chroma run` server when several do.

Collections are always opened with `embedding_function=None`, and every write carries its own
embeddings, computed by the worker's `Embed`: Chroma's default embedding function would download a
model at run time. Writes go in slices of `get_max_batch_size()`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from crossrank.pipeline.settings import PipelineSettings

# Chroma's own rules (its Rust validator, chromadb 1.x): 3 to 512 characters from [a-zA-Z0-9._-], starting
# and ending with a letter or digit, no "..", and not an IPv4 address.
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")
_IPV4 = re.compile(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$")


class CollectionNotFound(LookupError):
    def __init__(self, name: str):
        super().__init__(f"no Chroma collection {name!r}: index documents into it first (crossrank index FILE "
                         f"--collection {name})")


class StoreNotFound(CollectionNotFound):
    """A read found no embedded store at the path: opening one there would create an empty store."""

    def __init__(self, path: str):
        LookupError.__init__(self, f"no Chroma store at {path}: set CROSSRANK_CHROMA_PATH to the folder the pipeline "
                                   "wrote, or CROSSRANK_CHROMA_URL to its Chroma server (`crossrank up` prints it)")


class ResultsGone(CollectionNotFound):
    def __init__(self, job_id: str, records: int, name: str):
        LookupError.__init__(self, f"job {job_id} wrote {records} result records to Chroma collection {name!r}, which "
                                   "is gone from this store: deleted, or CROSSRANK_CHROMA_PATH/URL point elsewhere")


def check_collection_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name or _IPV4.match(name):
        raise ValueError(f"bad collection name {name!r}: 3 to 512 characters from a-z A-Z 0-9 . _ -, starting "
                         "and ending with a letter or digit, without '..', and not an IP address")
    return name


def results_collection_name(collection: str) -> str:
    return f"{collection}-results"


def open_chroma(settings: PipelineSettings, read_only: bool = False) -> ClientAPI:
    """`read_only`: for commands that only read, which must not leave an empty store behind."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if read_only and not settings.chroma_url and not Path(settings.chroma_path).is_dir():
        raise StoreNotFound(settings.chroma_path)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(host=url.hostname or "localhost", port=url.port or 8000,
                                   ssl=url.scheme == "https", settings=chroma_settings)
    return chromadb.PersistentClient(path=settings.chroma_path, settings=chroma_settings)


def open_collection(client: ClientAPI, name: str, create: bool = False) -> Collection:
    if create:
        # Cosine distance: the worker's embeddings are normalised, so this ranks like a dot product.
        return client.get_or_create_collection(check_collection_name(name), embedding_function=None,
                                               configuration={"hnsw": {"space": "cosine"}})
    try:
        return client.get_collection(name, embedding_function=None)
    except (NotFoundError, ValueError) as exc:
        raise CollectionNotFound(name) from exc


def upsert(collection: Collection, client: ClientAPI, ids: Sequence[str], embeddings: Sequence[Sequence[float]],
           documents: Sequence[str], metadatas: Sequence[dict]) -> None:
    """Upsert in slices Chroma accepts; ids are deterministic, so repeating this changes nothing."""
    step = client.get_max_batch_size()
    for start in range(0, len(ids), step):
        end = start + step
        collection.upsert(ids=list(ids[start:end]), embeddings=[list(e) for e in embeddings[start:end]],
                          documents=list(documents[start:end]), metadatas=list(metadatas[start:end]))
