"""crossrank.pipeline: bulk index and rerank jobs on Celery and Redis, written to Chroma.

    from crossrank import pipeline

    job = pipeline.submit_index("corpus.jsonl", collection="docs")
    pipeline.wait(job)
    job = pipeline.submit_rerank("queries.jsonl", collection="docs", profile="document")
    for record in pipeline.results(pipeline.wait(job).id):
        print(record.query_id, record.rank, record.score, record.text)

`app` is the Celery app, so `celery -A crossrank.pipeline worker` works.
"""

from crossrank.pipeline.api import (
    PROFILES,
    ResultRecord,
    cancel,
    list_jobs,
    results,
    resume,
    search,
    status,
    submit_index,
    submit_rerank,
    wait,
)
from crossrank.pipeline.celery_app import app
from crossrank.pipeline.jobs import JobNotFound, JobStatus
from crossrank.pipeline.search import Hit, TwoStageRetriever
from crossrank.pipeline.settings import PipelineSettings

__all__ = [
    "PROFILES", "Hit", "JobNotFound", "JobStatus", "PipelineSettings", "ResultRecord", "TwoStageRetriever", "app",
    "cancel", "list_jobs", "results", "resume", "search", "status", "submit_index", "submit_rerank", "wait",
]
