"""Bad BEIR folders: one clear message naming the file and line, and nothing written."""

from __future__ import annotations

import pytest
from support.evaluation import CORPUS, QRELS, QUERIES, run_eval, write_beir

from crossrank.pipeline.evaluation.beir import BeirError, load_beir


def test_a_good_folder_loads_with_titles_and_leaves_unjudged_queries_out(beir):
    data = load_beir(beir)
    assert len(data.documents) == 10
    assert data.documents[0].text == "Paris paris is the capital and largest city of france"
    assert data.documents[2].text.startswith("rome is")  # an empty title adds nothing
    assert list(data.queries) == ["q1", "q2", "q4"]
    assert data.qrels["q2"] == {"flu": 2, "vaccine": 1}
    assert data.left_out == [f"{beir / 'queries.jsonl'} line 3: query 'q3' has no judgments in test.tsv; left out"]


def test_qrels_without_a_header_line_are_read_too(tmp_path):
    assert load_beir(write_beir(tmp_path / "d", header=False)).qrels == load_beir(write_beir(tmp_path / "e")).qrels


@pytest.mark.parametrize(("break_it", "message"), [
    (lambda f: (f / "corpus.jsonl").unlink(), "not in BEIR layout, missing corpus.jsonl"),
    (lambda f: (f / "qrels" / "test.tsv").unlink(), "missing qrels/test.tsv"),
    (lambda f: (f / "corpus.jsonl").write_text(""), "corpus.jsonl: the corpus holds no documents"),
    (lambda f: (f / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n{"_id": "b", "text": \n'),
     "corpus.jsonl line 2: not valid JSON"),
    (lambda f: (f / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n'),
     "corpus.jsonl line 2: document id 'a' appears twice"),
    (lambda f: (f / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n["q2"]\n'),
     "queries.jsonl line 2: a JSON object is expected"),
    (lambda f: write_beir(f, qrels=[*QRELS, ("q9", "paris", 1)]),
     "test.tsv line 8: query id 'q9' is not in queries.jsonl"),
    (lambda f: write_beir(f, qrels=[("q1", "paris", 1), ("q1", "london", 1)]),
     "test.tsv line 3: corpus id 'london' is not in corpus.jsonl"),
    (lambda f: write_beir(f, qrels=[("q1", "paris", "high")]), "test.tsv line 2: score 'high' is not an integer"),
    (lambda f: write_beir(f, qrels=[]), "test.tsv: no judgments"),
])
def test_bad_folders_name_the_file_and_line(beir, break_it, message):
    break_it(beir)
    with pytest.raises(BeirError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_beir(beir)


def test_the_command_fails_with_one_line_and_writes_nothing(tmp_path):
    folder = write_beir(tmp_path / "data", qrels=[*QRELS, ("q2", "nowhere", 1)])
    out = tmp_path / "report"
    result = run_eval(str(folder), "--out", str(out), env={"CROSSRANK_WORKER_TARGET": "127.0.0.1:1"})
    assert result.exit_code == 1
    assert "test.tsv line 8: corpus id 'nowhere' is not in corpus.jsonl" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_folder_that_is_not_beir_says_what_it_needs(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = run_eval(str(tmp_path))
    assert result.exit_code == 1
    assert "not in BEIR layout, missing corpus.jsonl, queries.jsonl, qrels/test.tsv" in result.output


def test_a_bad_sweep_is_refused_before_anything_runs(beir):
    result = run_eval(str(beir), "--sweep", "depth=1,2")
    assert result.exit_code == 2 and "initial_k=20,50,100,200" in result.output


def test_queries_with_no_text_are_named(tmp_path):
    queries = [*QUERIES[:1], {"_id": "q2", "text": "  "}]
    folder = write_beir(tmp_path / "d", queries=queries)
    with pytest.raises(BeirError, match="queries.jsonl line 2: query 'q2' has no text"):
        load_beir(folder)


def test_an_empty_document_is_left_out_and_named_and_may_still_be_judged(tmp_path):
    corpus = [*CORPUS, {"_id": "blank", "title": "", "text": " "}]
    folder = write_beir(tmp_path / "d", corpus=corpus, qrels=[*QRELS, ("q1", "blank", 1)])
    data = load_beir(folder)
    assert [d.id for d in data.documents] == [d["_id"] for d in CORPUS]
    assert data.qrels["q1"]["blank"] == 1
    assert data.left_out[0] == (f"{folder / 'corpus.jsonl'} line 11: document 'blank' has neither title nor text; "
                                "left out")
