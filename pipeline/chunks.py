"""What a Celery task receives: one chunk of a job, typed, and how it travels.

A chunk goes over the wire as one JSON object (`to_message`), which is also what the job keeps
in Redis until the chunk is counted, so that a lost chunk can be sent again as it was (`enqueue`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from crossrank.pipeline.celery_app import INDEX_TASK, RERANK_TASK, configure
from crossrank.pipeline.documents import Document, Query
from crossrank.pipeline.settings import PipelineSettings


class _Message:
    def to_message(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class IndexChunk(_Message):
    job_id: str
    chunk: int
    collection: str
    passage_chars: int
    passage_overlap: int
    documents: list[Document]

    @classmethod
    def from_message(cls, message: dict) -> IndexChunk:
        return cls(**{**message, "documents": [Document(**d) for d in message["documents"]]})

    def __len__(self) -> int:
        return len(self.documents)


@dataclass(frozen=True)
class RerankChunk(_Message):
    job_id: str
    chunk: int
    collection: str
    results_collection: str
    initial_k: int
    top_k: int
    queries: list[Query]

    @classmethod
    def from_message(cls, message: dict) -> RerankChunk:
        return cls(**{**message, "queries": [Query(**q) for q in message["queries"]]})

    def __len__(self) -> int:
        return len(self.queries)


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
