"""Reading index and rerank inputs: JSONL, CSV and text; bad lines become errors with their line number."""

import json

import pytest

from crossrank.pipeline.documents import (
    Document,
    LineError,
    Query,
    content_id,
    detect_format,
    document_from,
    read_documents,
    read_queries,
)


def test_jsonl_takes_id_or__id_and_keeps_metadata(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "a", "text": "first", "metadata": {"lang": "en", "year": 2024, "ok": True}}),
        json.dumps({"_id": "4380635", "title": "Fahrenheit", "text": "second", "metadata": {}}),
        json.dumps({"id": 7, "text": "third", "metadata": {"tags": ["x", "y"], "none": None, "nested": {"k": 1}}}),
        "",  # blank lines are not documents and not errors
        json.dumps({"text": "检索增强生成"}, ensure_ascii=False),
    ]) + "\n", encoding="utf-8")
    documents, errors = read_documents(path)
    assert errors == []
    assert documents == [
        Document("a", "first", {"lang": "en", "year": 2024, "ok": True}),
        Document("4380635", "second", {"title": "Fahrenheit"}),
        # Chroma keeps scalars only: lists and objects become JSON text, None is dropped.
        Document("7", "third", {"tags": '["x", "y"]', "nested": '{"k": 1}'}),
        Document(content_id("检索增强生成"), "检索增强生成", {}),
    ]


def test_a_malformed_jsonl_line_is_an_error_with_its_number_and_the_rest_is_kept(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "1", "text": "one"}),
        json.dumps({"id": "2", "text": "two"}),
        '{"id": "3", "text": "three"',  # cut short
        "",
        json.dumps({"id": "5", "text": ""}),  # no text
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "7", "title": "no text field"}),
        json.dumps({"id": "8", "text": "eight", "metadata": "not an object"}),
        json.dumps({"id": "9", "text": "nine"}),
    ]) + "\n", encoding="utf-8")
    documents, errors = read_documents(path)
    assert [d.id for d in documents] == ["1", "2", "9"]
    assert [e.line for e in errors] == [3, 5, 6, 7, 8]
    assert "not valid JSON" in errors[0].message
    assert "text" in errors[1].message and "text" in errors[3].message
    assert "JSON object" in errors[2].message
    assert "metadata" in errors[4].message
    assert str(errors[0]).startswith("line 3: ")


def test_content_ids_are_deterministic_and_distinct(tmp_path):
    lines = ["the same text", "another text", "the same text"]
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    first, _ = read_documents(tmp_path / "a.txt")
    second, _ = read_documents(tmp_path / "b.txt")
    assert [d.id for d in first] == [d.id for d in second]
    assert first[0].id == first[2].id != first[1].id
    assert content_id("the same text") == first[0].id
    assert len({content_id(f"text {i}") for i in range(1000)}) == 1000


def test_csv_with_a_header_row(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text(
        "id,title,text,lang\n"
        "d1,Paris,\"Paris is the capital of France, on the Seine.\",en\n"
        ",,北京是中国的首都,zh\n"
        "d3,,too,many,cells\n"
        "d4,,,en\n"
        "d5,,\"a cell\nover two lines\",\n",
        encoding="utf-8")
    documents, errors = read_documents(path)
    assert documents == [
        Document("d1", "Paris is the capital of France, on the Seine.", {"lang": "en", "title": "Paris"}),
        Document(content_id("北京是中国的首都"), "北京是中国的首都", {"lang": "zh"}),
        Document("d5", "a cell\nover two lines", {}),
    ]
    assert [(e.line, "cells" in e.message) for e in errors] == [(4, True), (5, False)]
    assert "text" in errors[1].message


def test_csv_without_a_text_column_is_refused(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'text' column"):
        read_documents(path)


def test_text_files_have_one_document_per_line(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("first line\n\n   \nsecond line\n什么是RAG技术？\n", encoding="utf-8")
    documents, errors = read_documents(path)
    assert errors == []
    assert [d.text for d in documents] == ["first line", "second line", "什么是RAG技术？"]
    assert [d.id for d in documents] == [content_id(d.text) for d in documents]


def test_format_detection_and_override(tmp_path):
    assert detect_format(tmp_path / "a.jsonl") == "jsonl"
    assert detect_format(tmp_path / "a.NDJSON") == "jsonl"
    assert detect_format(tmp_path / "a.csv") == "csv"
    assert detect_format(tmp_path / "a.md") == "txt"
    assert detect_format(tmp_path / "a.data", "csv") == "csv"
    with pytest.raises(ValueError, match="unknown format"):
        detect_format(tmp_path / "a.jsonl", "xml")
    # A JSONL file read as text: every line is a document, JSON and all.
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "x"}\n', encoding="utf-8")
    assert read_documents(path, "txt")[0][0].text == '{"text": "x"}'


def test_queries_from_jsonl_and_text(tmp_path):
    jsonl = tmp_path / "queries.jsonl"
    jsonl.write_text("\n".join([
        json.dumps({"_id": "19335", "text": "anthropological definition of environment", "metadata": {}}),
        json.dumps({"id": "q2", "text": "什么是RAG技术？"}, ensure_ascii=False),
        "{broken",
    ]) + "\n", encoding="utf-8")
    queries, errors = read_queries(jsonl)
    assert queries == [Query("19335", "anthropological definition of environment"), Query("q2", "什么是RAG技术？")]
    assert errors == [LineError(3, errors[0].message)] and "JSON" in errors[0].message

    text = tmp_path / "queries.txt"
    text.write_text("  what is rag  \n\nwhere is paris\n", encoding="utf-8")
    queries, errors = read_queries(text)
    assert queries == [Query("q1", "what is rag"), Query("q2", "where is paris")] and errors == []


def test_records_given_in_python_are_checked_like_lines():
    assert document_from({"_id": 3, "text": "x", "metadata": {"source": {"kind": "wiki"}, "n": 1}}) == Document(
        "3", "x", {"source": '{"kind": "wiki"}', "n": 1})
    assert document_from({"id": 0, "text": "zero"}).id == "0"
    assert document_from({"text": "no id"}).id == content_id("no id")
    with pytest.raises(ValueError, match="text"):
        document_from({"id": "1", "text": "  "})


@pytest.mark.parametrize(("name", "content"), [
    ("docs.jsonl", '{"id": "1", "text": "hello"}\n'),
    ("docs.csv", "text,id\nhello,1\n"),
    ("docs.txt", "hello\n"),
])
def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))  # as Excel and Windows editors save UTF-8
    documents, errors = read_documents(path)
    assert errors == [] and [d.text for d in documents] == ["hello"]
    assert documents[0].id == ("1" if name != "docs.txt" else content_id("hello"))
