"""What a Celery task receives: one chunk of a job, typed, and how it travels.

A chunk goes over the wire as one JSON object (`to_message`), which is also what the job keeps
in Redis until the chunk is counted, so that a lost chunk can be sent again as it was (`enqueue`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, TypeVar

from crossrank.pipeline.celery_app import INDEX_TASK, RERANK_TASK, configure
from crossrank.pipeline.documents import Document, Query
from crossrank.pipeline.settings import PipelineSettings

M = TypeVar("M", bound="_Chunk")


@dataclass(frozen=True)
class _Chunk:
    """Which job and chunk, the collection it reads or writes, and its records: one list field,
    named with its item type in `RECORDS`."""

    RECORDS: ClassVar[tuple[str, type]]
    job_id: str
    chunk: int
    collection: str

    def to_message(self) -> dict:
        return asdict(self)

    @classmethod
    def from_message(cls: type[M], message: dict) -> M:
        name, kind = cls.RECORDS
        return cls(**{**message, name: [kind(**record) for record in message[name]]})

    def __len__(self) -> int:
        return len(getattr(self, self.RECORDS[0]))


@dataclass(frozen=True)
class IndexChunk(_Chunk):
    RECORDS = ("documents", Document)

    passage_chars: int
    passage_overlap: int
    documents: list[Document]


@dataclass(frozen=True)
class RerankChunk(_Chunk):
    RECORDS = ("queries", Query)

    results_collection: str
    initial_k: int
    top_k: int
    queries: list[Query]


Chunk = IndexChunk | RerankChunk

TASKS = {"index": INDEX_TASK, "rerank": RERANK_TASK}  # by job kind


def enqueue(settings: PipelineSettings, kind: str, messages: list[dict]) -> None:
    """Put chunk messages of one kind of job on their queue."""
    task = TASKS[kind]
    app = configure(settings)
    with app.connection_for_write(settings.redis_url) as connection:
        for message in messages:
            records = len(message.get("documents") or message.get("queries") or [])
            # argsrepr: logs and Flower show the chunk, not every document's text.
            # ignore_result: nothing reads task results, and subscribing to them would tie this process to
            # the result backend of the first Redis it used.
            app.send_task(task, args=(message,), connection=connection, ignore_result=True,
                          argsrepr=f"(job {message['job_id']}, chunk {message['chunk']}, <{records} records>)")
