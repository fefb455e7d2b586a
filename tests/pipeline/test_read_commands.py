"""Commands that only read (`jobs results`, `search`) never create a store, and say what is missing."""

import subprocess

from support.pipeline import write_jsonl
from support.workers import crossrank_command

TOPICS = ["paris is the capital of france", "berlin is the capital of germany", "巴黎是法国的首都", "今天天气很冷"]


def test_a_read_names_the_missing_store_and_leaves_no_folder(embedded_pipeline, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("capital of france\n", encoding="utf-8")
    job_id = embedded_pipeline.cli("jobs", "rerank", "--collection", "never-indexed", "--queries",
                                   str(queries)).stdout.strip()
    missing = tmp_path / "no-store-here" / "chroma"
    env = {**embedded_pipeline.env, "CROSSRANK_CHROMA_PATH": str(missing)}
    for args in (["jobs", "results", job_id], ["search", "capital", "--collection", "docs"]):
        result = subprocess.run(crossrank_command(*args), capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 1, result.stdout
        assert f"no Chroma store at {missing}" in result.stderr and "CROSSRANK_CHROMA_PATH" in result.stderr
        assert not missing.exists() and not missing.parent.exists()


def test_results_whose_collection_is_gone_say_so(embedded_pipeline, tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(TOPICS)])
    queries = tmp_path / "queries.txt"
    queries.write_text("capital of france\n天气\n", encoding="utf-8")
    assert embedded_pipeline.cli_json("index", str(corpus), "--collection", "gone-soon", "--wait")["state"] == "done"
    job = embedded_pipeline.cli_json("jobs", "rerank", "--collection", "gone-soon", "--queries", str(queries),
                                     "--initial-k", "3", "--top-k", "2", "--wait")
    assert job["state"] == "done" and job["counts"]["records"] == 4
    assert len(embedded_pipeline.cli_json("jobs", "results", job["id"])) == 4

    embedded_pipeline.chroma().delete_collection("gone-soon-results")
    result = embedded_pipeline.cli("jobs", "results", job["id"])
    assert result.returncode == 1, result.stdout
    assert f"job {job['id']} wrote 4 result records to Chroma collection 'gone-soon-results', which is gone" \
        in result.stderr
    assert "no results" not in result.stderr.lower()

