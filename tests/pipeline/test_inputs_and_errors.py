"""Bad input lines, bad names and unknown jobs: reported clearly, and the rest of the work still done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from support.pipeline import QUERIES, write_jsonl
from support.workers import crossrank_command

from crossrank import pipeline
from crossrank.pipeline.store import open_collection


def test_a_malformed_line_is_reported_and_its_neighbours_are_indexed(embedded_pipeline, tmp_path):
    path = tmp_path / "docs.jsonl"
    good = [{"id": f"d{i}", "text": f"paris is the capital of france, document {i}"} for i in range(5)]
    lines = [json.dumps(good[0]), json.dumps(good[1]), json.dumps(good[2]), '{"id": "d-bad", "text": "cut sh',
             json.dumps(good[3]), json.dumps(good[4])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = embedded_pipeline.cli_json("index", str(path), "--collection", "malformed", "--wait")
    assert job["state"] == "done"
    assert job["counts"] == {"indexed": 5, "passages": 5, "skipped": 0, "failed": 1}
    assert job["progress"] == {"done": 5, "total": 5}
    assert job["error_count"] == 1 and len(job["errors"]) == 1
    assert job["errors"][0]["line"] == 4 and "JSON" in job["errors"][0]["message"]
    found = open_collection(embedded_pipeline.chroma(), "malformed").get()
    assert sorted(found["ids"]) == [f"d{i}#0" for i in range(5)]

    table = embedded_pipeline.cli("jobs", "status", job["id"])
    assert table.returncode == 0 and "line 4" in table.stdout


def test_repeated_ids_are_skipped_and_text_files_index_one_document_per_line(embedded_pipeline, tmp_path):
    path = write_jsonl(tmp_path / "dups.jsonl", [{"id": "same", "text": "first"}, {"id": "same", "text": "second"},
                                                 {"id": "other", "text": "third"}])
    job = embedded_pipeline.cli_json("index", str(path), "--collection", "dups", "--wait")
    assert job["state"] == "done" and job["counts"] == {"indexed": 2, "passages": 2, "skipped": 1, "failed": 0}
    assert open_collection(embedded_pipeline.chroma(), "dups").get(ids=["same#0"])["documents"] == ["first"]

    text = tmp_path / "lines.txt"
    text.write_text("北京是中国的首都\n\nparis is the capital of france\n", encoding="utf-8")
    job = embedded_pipeline.cli_json("index", str(text), "--collection", "lines", "--wait")
    assert job["state"] == "done" and job["counts"]["indexed"] == 2


def test_a_bad_collection_name_is_refused_before_anything_is_queued(embedded_pipeline, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": "1", "text": "text"}])
    before = len(embedded_pipeline.jobs().list(limit=1000))
    for name in ("a", "-starts-with-a-dash", "has space"):
        result = embedded_pipeline.cli("index", str(path), "--collection", name)
        assert result.returncode != 0
        assert "bad collection name" in result.stderr and repr(name) in result.stderr
        assert "Traceback" not in result.stderr
    assert len(embedded_pipeline.jobs().list(limit=1000)) == before


def test_unknown_jobs_give_a_clear_error(embedded_pipeline):
    for args in (("jobs", "status", "nosuchjob"), ("jobs", "cancel", "nosuchjob"), ("jobs", "results", "nosuchjob")):
        result = embedded_pipeline.cli(*args)
        assert result.returncode == 1, result
        assert "no job 'nosuchjob'" in result.stderr and "Traceback" not in result.stderr


def test_bad_depths_and_files_are_refused(embedded_pipeline, tmp_path):
    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(QUERIES) + "\n", encoding="utf-8")
    result = embedded_pipeline.cli("jobs", "rerank", "--collection", "malformed", "--queries", str(queries),
                                   "--profile", "preview", "--top-k", "30")
    assert result.returncode == 1 and "top_k (30) cannot be larger than initial_k (20)" in result.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("{not json\n", encoding="utf-8")
    result = embedded_pipeline.cli("index", str(empty), "--collection", "empty")
    assert result.returncode == 1 and "no documents to index" in result.stderr and "line 1" in result.stderr
    result = _refused_worker(embedded_pipeline, "--queues", "index,bogus")
    assert result.returncode == 2 and "bogus" in result.stderr
    # Several pool processes writing one embedded Chroma folder would break it.
    result = _refused_worker(embedded_pipeline, "--concurrency", "2")
    assert result.returncode == 2 and "CROSSRANK_CHROMA_URL" in result.stderr


def _refused_worker(p, *args: str) -> subprocess.CompletedProcess:
    """`crossrank pipeline worker` that must exit at once; stopped with all its processes if it starts."""
    proc = subprocess.Popen(crossrank_command("pipeline", "worker", *args), env=p.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"crossrank pipeline worker {' '.join(args)} started instead of refusing") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_results_of_an_index_job_are_refused(embedded_pipeline, tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": "1", "text": "one document"}])
    job = embedded_pipeline.cli_json("index", str(path), "--collection", "index-only", "--wait")
    result = embedded_pipeline.cli("jobs", "results", job["id"])
    assert result.returncode == 1 and "only rerank jobs have results" in result.stderr
    # Cancelling a finished job leaves it as it is.
    assert embedded_pipeline.cli_json("jobs", "cancel", job["id"])["state"] == "done"


def test_reranking_a_collection_that_does_not_exist_fails_the_job(embedded_pipeline, tmp_path):
    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(QUERIES) + "\n", encoding="utf-8")
    result = embedded_pipeline.cli("jobs", "rerank", "--collection", "never-indexed", "--queries", str(queries),
                                   "--wait", "--json")
    assert result.returncode == 1  # --wait exits 1 unless the job ends done
    job = json.loads(result.stdout)
    assert job["state"] == "failed" and job["progress"] == {"done": len(QUERIES), "total": len(QUERIES)}
    assert job["counts"]["failed"] == len(QUERIES) and job["counts"]["records"] == 0
    assert job["errors"] and all("no Chroma collection 'never-indexed'" in e["message"] for e in job["errors"])
    assert all(e["retries"] == 0 for e in job["errors"])  # a missing collection is not retried
    # It wrote no results: there are none to show, which is not an error.
    assert embedded_pipeline.cli_json("jobs", "results", job["id"]) == []
    shown = embedded_pipeline.cli("jobs", "results", job["id"])
    assert shown.returncode == 0 and "no results" in shown.stderr

    search = embedded_pipeline.cli("search", "anything", "--collection", "never-indexed")
    assert search.returncode == 1 and "no Chroma collection 'never-indexed'" in search.stderr


def test_rerank_when_the_collection_is_smaller_than_top_k(embedded_pipeline, tmp_path):
    settings = embedded_pipeline.settings
    index = pipeline.wait(pipeline.submit_index(["北京是中国的首都", "paris is the capital of france"], "two-docs",
                                                settings=settings), timeout=120, settings=settings)
    assert index.state == "done" and index.counts["passages"] == 2
    job = pipeline.wait(pipeline.submit_rerank(QUERIES, "two-docs", profile="preview", settings=settings),
                        timeout=120, settings=settings)
    assert job.state == "done" and job.params["initial_k"] == 20 and job.params["top_k"] == 3
    assert job.counts == {"queries": len(QUERIES), "pairs": 2 * len(QUERIES), "records": 2 * len(QUERIES),
                          "failed": 0, "skipped": 0}
    records = pipeline.results(job.id, settings=settings)
    assert len(records) == 2 * len(QUERIES)
    for group in pipeline.api.summarize(records).values():
        assert [r.rank for r in group] == [1, 2] and sorted(r.initial_rank for r in group) == [1, 2]
        assert group[0].score >= group[1].score
    assert {r.query_id for r in records} == {f"q{i}" for i in range(1, len(QUERIES) + 1)}


def test_the_pipeline_worker_serves_metrics_read_from_redis(embedded_pipeline):
    settings = embedded_pipeline.settings
    job = pipeline.wait(pipeline.submit_index(["one more document"], "metrics-docs", settings=settings), timeout=120,
                        settings=settings)
    assert job.state == "done"
    with urllib.request.urlopen(embedded_pipeline.metrics_url, timeout=10) as response:
        text = response.read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    jobs = embedded_pipeline.jobs()
    states, stats = jobs.states(), jobs.stats()
    assert states[("index", "done")] >= 1
    for kind in ("index", "rerank"):
        for state in ("queued", "running", "done", "failed", "cancelled"):
            assert samples[("crossrank_pipeline_jobs", (("kind", kind), ("state", state)))] == states.get(
                (kind, state), 0)
        for outcome in ("ok", "failed"):
            assert samples[("crossrank_pipeline_chunks_total", (("kind", kind), ("outcome", outcome)))] == stats.get(
                f"chunks:{kind}:{outcome}", 0)
    assert samples[("crossrank_pipeline_chunks_total", (("kind", "index"), ("outcome", "ok")))] >= 1
