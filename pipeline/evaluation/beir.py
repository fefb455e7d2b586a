"""Reading a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) strictly.

An evaluation is only worth something on exactly the data it names, so unlike an index job, which
skips a bad line and goes on, any line that cannot be used stops the evaluation before anything is
indexed or written, with the file and line in the message. Queries that have no judgments are left
out, as BEIR does, and so are empty documents; each is named in `left_out`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from crossrank.pipeline.documents import Document, _read_jsonl

LAYOUT = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")
QRELS_HEADER = ("query-id", "corpus-id", "score")


class BeirError(ValueError):
    """The folder cannot be evaluated; the message names the file and, where there is one, the line."""


@dataclass(frozen=True)
class BeirData:
    path: Path
    documents: list[Document]  # text is `title text`, as the BEIR figures index it
    queries: dict[str, str]  # judged queries only, in file order
    qrels: dict[str, dict[str, int]]
    left_out: list[str]  # one line per query without judgments and per empty document
    corpus_sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    rows, errors = _read_jsonl(path)
    if errors:
        raise BeirError(f"{path} {errors[0]}")
    return rows


def _id_and_text(path: Path, number: int, fields: dict) -> tuple[str, str]:
    raw_id, text = fields.get("_id", fields.get("id")), fields.get("text")
    if raw_id in (None, "") or isinstance(raw_id, dict | list):
        raise BeirError(f"{path} line {number}: no '_id'")
    if not isinstance(text, str):
        raise BeirError(f"{path} line {number}: no 'text' (a string)")
    return str(raw_id), text


def _read_corpus(path: Path) -> tuple[list[Document], set[str], list[str]]:
    """The documents; every id, empty documents' too (qrels may judge them); a line per empty document."""
    documents, seen, empty = [], set(), []
    for number, fields in _jsonl(path):
        doc_id, text = _id_and_text(path, number, fields)
        if doc_id in seen:
            raise BeirError(f"{path} line {number}: document id {doc_id!r} appears twice")
        seen.add(doc_id)
        title = fields.get("title")
        full = f"{title} {text}".strip() if isinstance(title, str) else text.strip()
        if full:
            documents.append(Document(doc_id, full))
        else:  # Cranfield has two: nothing to index, and nothing a search could find
            empty.append(f"{path} line {number}: document {doc_id!r} has neither title nor text; left out")
    if not documents:
        raise BeirError(f"{path}: the corpus holds no documents")
    return documents, seen, empty


def _read_queries(path: Path) -> list[tuple[int, str, str]]:
    queries, seen = [], set()
    for number, fields in _jsonl(path):
        query_id, text = _id_and_text(path, number, fields)
        if query_id in seen:
            raise BeirError(f"{path} line {number}: query id {query_id!r} appears twice")
        if not text.strip():
            raise BeirError(f"{path} line {number}: query {query_id!r} has no text")
        seen.add(query_id)
        queries.append((number, query_id, text))
    if not queries:
        raise BeirError(f"{path}: no queries")
    return queries


def _read_qrels(path: Path, query_ids: set[str], doc_ids: set[str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            cells = line.split()
            if not cells:
                continue
            if number == 1 and tuple(cells) == QRELS_HEADER:
                continue
            if len(cells) != 3:
                raise BeirError(f"{path} line {number}: expected 3 columns (query-id corpus-id score), "
                                f"found {len(cells)}")
            query_id, doc_id, grade = cells
            try:
                score = int(grade)
            except ValueError:
                raise BeirError(f"{path} line {number}: score {grade!r} is not an integer") from None
            if query_id not in query_ids:
                raise BeirError(f"{path} line {number}: query id {query_id!r} is not in queries.jsonl")
            if doc_id not in doc_ids:
                raise BeirError(f"{path} line {number}: corpus id {doc_id!r} is not in corpus.jsonl")
            qrels.setdefault(query_id, {})[doc_id] = score
    if not qrels:
        raise BeirError(f"{path}: no judgments")
    return qrels


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_beir(folder: str | Path) -> BeirData:
    folder = Path(folder)
    if not folder.is_dir():
        raise BeirError(f"{folder}: not a folder (a BEIR folder holds {', '.join(LAYOUT)})")
    missing = [name for name in LAYOUT if not (folder / name).is_file()]
    if missing:
        raise BeirError(f"{folder}: not in BEIR layout, missing {', '.join(missing)} (expected {', '.join(LAYOUT)})")
    corpus_path, queries_path, qrels_path = (folder / name for name in LAYOUT)
    documents, doc_ids, empty = _read_corpus(corpus_path)
    numbered = _read_queries(queries_path)
    qrels = _read_qrels(qrels_path, {q for _, q, _ in numbered}, doc_ids)
    left_out = empty + [f"{queries_path} line {n}: query {q!r} has no judgments in {qrels_path.name}; left out"
                for n, q, _ in numbered if q not in qrels]
    queries = {q: text for _, q, text in numbered if q in qrels}
    return BeirData(folder, documents, queries, qrels, left_out, _sha256(corpus_path))
