"""Reading the documents of an index job and the queries of a rerank job.

Files are read where the job is submitted, so the Celery workers need no access to the
submitter's disk: the parsed records travel in the task messages. A line that cannot be read
becomes an error with its line number and the rest of the file is still used.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("jsonl", "csv", "txt")


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    id: str
    text: str


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def content_id(text: str) -> str:
    """A deterministic id for a record without one, so that indexing a file twice writes the same ids."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    return {"jsonl": "jsonl", "ndjson": "jsonl", "csv": "csv"}.get(suffix, "txt")


def _metadata(value: object) -> dict:
    """Chroma keeps only str, int, float and bool values: anything else is stored as JSON text."""
    if not isinstance(value, dict):
        raise ValueError("'metadata' must be an object")
    return {str(k): v if isinstance(v, str | int | float | bool) else json.dumps(v, ensure_ascii=False)
            for k, v in value.items() if v is not None}


def _record(fields: dict, line: int) -> Document:
    text = fields.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("no 'text' (a non-empty string)")
    raw_id = fields.get("id", fields.get("_id"))
    doc_id = str(raw_id) if raw_id not in (None, "") else content_id(text)
    title = fields.get("title")
    metadata = _metadata(fields.get("metadata") or {})
    if isinstance(title, str) and title:
        metadata.setdefault("title", title)
    return Document(doc_id, text, metadata)


def document_from(fields: dict) -> Document:
    """A record given in Python (`id` or `_id`, `text`, `metadata`, `title`), checked like a line of a file."""
    return _record(fields, 0)


def _read_jsonl(path: Path) -> tuple[list[tuple[int, dict]], list[LineError]]:
    rows, errors = [], []
    # utf-8-sig: a byte order mark (Excel, Windows editors) is not part of the first line.
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(LineError(number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
                continue
            if isinstance(fields, dict):
                rows.append((number, fields))
            else:
                errors.append(LineError(number, "a JSON object is expected"))
    return rows, errors


def _read_csv(path: Path) -> tuple[list[tuple[int, dict]], list[LineError]]:
    rows, errors = [], []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "text" not in reader.fieldnames:
            raise ValueError(f"{path}: a CSV file needs a header row with a 'text' column")
        known = {"id", "_id", "text", "title"}
        for fields in reader:
            number = reader.line_num
            if None in fields:  # more cells than header names
                errors.append(LineError(number, f"{len(reader.fieldnames) + len(fields[None])} cells for "
                                                f"{len(reader.fieldnames)} columns"))
                continue
            extra = {k: v for k, v in fields.items() if k not in known and v not in (None, "")}
            rows.append((number, {**{k: fields[k] for k in known if k in fields}, "metadata": extra}))
    return rows, errors


def _read_txt(path: Path) -> tuple[list[tuple[int, dict]], list[LineError]]:
    with open(path, encoding="utf-8-sig") as f:
        return [(n, {"text": line.rstrip("\n")}) for n, line in enumerate(f, 1) if line.strip()], []


_READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "txt": _read_txt}


def read_documents(path: str | Path, fmt: str | None = None) -> tuple[list[Document], list[LineError]]:
    """The documents of a file, and one error per line that could not be used."""
    path = Path(path)
    rows, errors = _READERS[detect_format(path, fmt)](path)
    documents = []
    for number, fields in rows:
        try:
            documents.append(_record(fields, number))
        except ValueError as exc:
            errors.append(LineError(number, str(exc)))
    return documents, sorted(errors, key=lambda e: e.line)


def read_queries(path: str | Path) -> tuple[list[Query], list[LineError]]:
    """Queries from JSONL (`id` or `_id`, and `text`) or plain text, one per line (ids q1, q2, ...)."""
    path = Path(path)
    fmt = "jsonl" if detect_format(path) == "jsonl" else "txt"
    documents, errors = read_documents(path, fmt)
    if fmt == "txt":
        return [Query(f"q{i}", d.text.strip()) for i, d in enumerate(documents, 1)], errors
    return [Query(d.id, d.text) for d in documents], errors
