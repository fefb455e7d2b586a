"""Pipeline logs as JSON lines (`crossrank pipeline worker --json-logs`), each carrying the process and
the Celery task id and, for a task's own lines, the job id and chunk passed as `extra=`."""

from __future__ import annotations

import logging

from celery._state import get_current_task
from celery.signals import after_setup_logger, after_setup_task_logger

from crossrank.common.logs import JsonLogFormatter


class TaskJsonLogFormatter(JsonLogFormatter):
    def context(self, record: logging.LogRecord) -> dict[str, object]:
        entry: dict[str, object] = {"process": record.processName}
        task = get_current_task()
        if task is not None and task.request.id:
            entry.update(task=task.name, task_id=task.request.id)
        return entry


def _install(logger: logging.Logger, **_) -> None:
    for handler in logger.handlers:
        handler.setFormatter(TaskJsonLogFormatter())


def use_json_logs() -> None:
    """Give Celery's handlers the JSON formatter once it has set them up, in every process."""
    after_setup_logger.connect(_install, weak=False)
    after_setup_task_logger.connect(_install, weak=False)
