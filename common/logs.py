"""JSON log lines, one object per line, for the worker (`crossrank serve --json-logs`) and the pipeline
(`crossrank pipeline worker --json-logs`)."""

from __future__ import annotations

import json
import logging

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a structured field.
# uvicorn adds `color_message`, its message again with terminal colour codes: never a field of ours.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                                   "color_message"}


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The `extra=` fields of a record (request_id, job_id, pairs, ...)."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}


class JsonLogFormatter(logging.Formatter):
    """ts, level, logger, msg, then every `extra=` field as a key of its own, and `exc` if any."""

    def context(self, record: logging.LogRecord) -> dict[str, object]:
        """More fields for a subclass to add (the process, the running task's id, ...)."""
        return {}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                                    "msg": record.getMessage()}
        entry.update(self.context(record))
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
