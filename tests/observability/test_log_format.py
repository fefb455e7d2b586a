"""Log lines carry `extra=` fields: as JSON keys with --json-logs, as key=value in text."""

from __future__ import annotations

import json
import logging

from crossrank.worker.cli import _JsonFormatter, _TextFormatter


def record(**extra) -> logging.LogRecord:
    entry = logging.LogRecord("crossrank.worker.engine", logging.DEBUG, __file__, 1, "%s done", ("rerank",),
                              None)
    entry.__dict__.update(extra)
    return entry


def test_json_lines_carry_extra_fields():
    line = json.loads(_JsonFormatter().format(record(request_id="r-1", pairs=3)))
    assert line["msg"] == "rerank done"
    assert line["request_id"] == "r-1" and line["pairs"] == 3
    assert line["level"] == "DEBUG" and line["logger"] == "crossrank.worker.engine"


def test_text_lines_carry_extra_fields():
    line = _TextFormatter("%(levelname)s %(message)s").format(record(request_id="r-1", pairs=3))
    assert line == "DEBUG rerank done request_id=r-1 pairs=3"


def test_plain_records_have_no_extra_fields():
    assert set(json.loads(_JsonFormatter().format(record()))) == {"ts", "level", "logger", "msg"}
