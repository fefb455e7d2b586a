"""The Celery app: `celery -A crossrank.pipeline worker` and `crossrank pipeline worker` load it.

Redis carries the broker, the result backend and the job state. Index and rerank tasks have their
own queues so each can be scaled on its own. A worker takes one task at a time (prefetch 1) and
acknowledges it only when done; a task whose process dies goes back to the queue.

Importing this module reads no environment: the app is configured from a `PipelineSettings` by
`configure(settings)` when a command starts, or, under `celery -A crossrank.pipeline`, from the
CROSSRANK_* variables when Celery first needs its configuration (`PipelineApp.on_configure`).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from crossrank.pipeline.settings import PipelineSettings

QUEUES = ("index", "rerank")
INDEX_TASK = "crossrank.index_chunk"
RERANK_TASK = "crossrank.rerank_chunk"


class PipelineApp(Celery):
    """The Celery app, with the settings it was configured from (None until then)."""

    settings: PipelineSettings | None = None

    def on_configure(self) -> None:
        """Celery calls this when it first needs its configuration. Under `celery -A crossrank.pipeline`
        no command of ours has given settings: read the variables then. A method, not the signal of the
        same name, so that a bad value stops the worker instead of being logged and skipped."""
        if self.settings is None:
            self.settings = PipelineSettings.from_env()
            self.config_from_object(celery_config(self.settings))


def celery_config(settings: PipelineSettings) -> dict[str, Any]:
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "task_default_queue": "index",
        "task_routes": {INDEX_TASK: {"queue": "index"}, RERANK_TASK: {"queue": "rerank"}},
        "task_annotations": {INDEX_TASK: {"max_retries": settings.task_retries},
                             RERANK_TASK: {"max_retries": settings.task_retries}},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Embedded Chroma takes one writing process: pool processes writing the same folder each keep
        # their own copy of the vector index, so queries miss passages and the store breaks. A server
        # (CROSSRANK_CHROMA_URL) takes any number; None is Celery's default, one per CPU.
        "worker_concurrency": None if settings.chroma_url else 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Progress and outcomes live in the job state; task results are not read.
        "task_ignore_result": True,
        "result_expires": 24 * 3600,
        "broker_connection_retry_on_startup": True,
        # A task not acknowledged within this time is delivered again (Redis transport); longer
        # than any chunk takes, so a slow chunk is not run twice while it is still running.
        "broker_transport_options": {"visibility_timeout": 2 * 3600},
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }


app = PipelineApp("crossrank", include=["crossrank.pipeline.tasks"])


def configure(settings: PipelineSettings) -> PipelineApp:
    """Configure the app from `settings`, once per distinct settings object; returns it."""
    if app.settings != settings:
        app.settings = settings
        app.config_from_object(celery_config(settings))
    return app
