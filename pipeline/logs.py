"""Pipeline logs as JSON lines (`crossrank pipeline worker --json-logs`), each carrying the Celery
task id and, for a task's own lines, the job id and chunk passed as `extra=`."""

from __future__ import annotations

import json
import logging

from celery._state import get_current_task
from celery.signals import after_setup_logger, after_setup_task_logger

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                                    "process": record.processName, "msg": record.getMessage()}
        task = get_current_task()
        if task is not None and task.request.id:
            entry.update(task=task.name, task_id=task.request.id)
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _install(logger: logging.Logger, **_) -> None:
    for handler in logger.handlers:
        handler.setFormatter(JsonLogFormatter())


def use_json_logs() -> None:
    """Give Celery's handlers the JSON formatter once it has set them up, in every process."""
    after_setup_logger.connect(_install, weak=False)
    after_setup_task_logger.connect(_install, weak=False)
