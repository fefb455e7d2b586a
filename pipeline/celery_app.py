"""The Celery app: `celery -A crossrank.pipeline worker` and `crossrank pipeline worker` load it.

Redis carries the broker, the result backend and the job state. Index and rerank tasks have their
own queues so each can be scaled on its own. A worker takes one task at a time (prefetch 1) and
acknowledges it only when done; a task whose process dies goes back to the queue.
"""

from __future__ import annotations

from celery import Celery

from crossrank.pipeline.settings import PipelineSettings

QUEUES = ("index", "rerank")
INDEX_TASK = "crossrank.index_chunk"
RERANK_TASK = "crossrank.rerank_chunk"


def create_app(settings: PipelineSettings | None = None) -> Celery:
    settings = settings or PipelineSettings.from_env()
    app = Celery("crossrank", include=["crossrank.pipeline.tasks"])
    app.conf.update(
        broker_url=settings.redis_url,
        result_backend=settings.redis_url,
        task_default_queue="index",
        task_routes={INDEX_TASK: {"queue": "index"}, RERANK_TASK: {"queue": "rerank"}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Embedded Chroma takes one writing process: pool processes writing the same folder each keep
        # their own copy of the vector index, so queries miss passages and the store breaks. A server
        # (CROSSRANK_CHROMA_URL) takes any number; None is Celery's default, one per CPU.
        worker_concurrency=None if settings.chroma_url else 1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Progress and outcomes live in the job state; task results are not read.
        task_ignore_result=True,
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        # A task not acknowledged within this time is delivered again (Redis transport); longer
        # than any chunk takes, so a slow chunk is not run twice while it is still running.
        broker_transport_options={"visibility_timeout": 2 * 3600},
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    app.crossrank_settings = settings
    return app


app = create_app()
