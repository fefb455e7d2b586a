"""A rerank job's result record: its id and its metadata in the results collection, written and read here only.

One record per (job, query, rank), id `job:query:rank`, so a chunk that runs twice overwrites its own
records (upsert) instead of adding more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crossrank.pipeline.search import Hit, SearchResult


@dataclass(frozen=True)
class ResultRecord:
    """One ranked passage of a rerank job, as stored in the results collection (`text` is Chroma's document)."""

    job_id: str
    query_id: str
    query: str
    rank: int
    initial_rank: int
    score: float
    doc_id: str
    passage_id: str
    text: str
    model: str

    @property
    def id(self) -> str:
        return f"{self.job_id}:{self.query_id}:{self.rank}"

    @classmethod
    def from_hit(cls, job_id: str, query_id: str, result: SearchResult, hit: Hit) -> ResultRecord:
        return cls(job_id=job_id, query_id=query_id, query=result.query, rank=hit.rank,
                   initial_rank=hit.initial_rank, score=hit.score, doc_id=hit.doc_id, passage_id=hit.passage_id,
                   text=hit.text, model=result.model)

    def to_chroma(self) -> dict[str, str | int | float]:
        """The record's metadata: every field but `text`, which Chroma keeps as the document."""
        return {"job_id": self.job_id, "query_id": self.query_id, "query": self.query, "doc_id": self.doc_id,
                "passage_id": self.passage_id, "rank": self.rank, "score": self.score,
                "initial_rank": self.initial_rank, "model": self.model}

    @classmethod
    def from_chroma(cls, metadata: Mapping, document: str) -> ResultRecord:
        return cls(job_id=metadata["job_id"], query_id=metadata["query_id"], query=metadata["query"],
                   rank=int(metadata["rank"]), initial_rank=int(metadata["initial_rank"]),
                   score=float(metadata["score"]), doc_id=metadata["doc_id"], passage_id=metadata["passage_id"],
                   text=document, model=metadata["model"])


@dataclass
class ResultRecords:
    """A rerank chunk's records for the results collection, column by column as Chroma takes them."""

    ids: list[str] = field(default_factory=list)
    embeddings: list[list[float]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadatas: list[dict] = field(default_factory=list)

    def add(self, job_id: str, query_id: str, result: SearchResult) -> None:
        for hit in result.hits:
            record = ResultRecord.from_hit(job_id, query_id, result, hit)
            self.ids.append(record.id)
            self.embeddings.append(hit.embedding)
            self.texts.append(record.text)
            self.metadatas.append(record.to_chroma())
