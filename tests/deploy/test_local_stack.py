"""`crossrank up`: the compose topology as local processes, run end to end.

Redis db 13 (by default) of the machine's Redis is this module's own (flushed before and after), except where
a test makes the stack start its private redis-server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from support.redis_server import LOCAL_STACK_DB, redis_url_for
from support.workers import crossrank_command

from crossrank.common.net import free_port
from crossrank.pipeline.stack import LocalStack, ServiceFailed, chroma_answers, grpc_serving, redis_answers

REDIS_URL = redis_url_for(LOCAL_STACK_DB)
TOPICS = ["paris is the capital of france", "berlin is the capital of germany", "the weather is cold today",
          "rerankers score a query and a passage together", "巴黎是法国的首都", "今天天气很冷"]


def _corpus(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"d{i}", "text": f"{TOPICS[i % len(TOPICS)]} (passage {i})"}) + "\n")
    return path


@pytest.fixture()
def redis_db13():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


def _cli(env: dict[str, str], *args: str, timeout: float = 240) -> dict | list:
    result = subprocess.run(crossrank_command(*args, "--json"), env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def _served(log: Path, kind: str) -> int:
    """Requests of `kind` (rerank, embed) a worker logged with --json-logs --log-level DEBUG."""
    return sum(1 for line in log.read_text().splitlines()
               if line.startswith("{") and json.loads(line).get("msg") == f"{kind} done")


@pytest.mark.slow
def test_up_runs_the_flow_and_stops_everything_on_ctrl_c(tiny_cross_encoder, tiny_bi_encoder, tmp_path):
    # Nothing listens on this port: `up` must start its own redis-server.
    private_redis = f"redis://127.0.0.1:{free_port()}/0"
    argv = crossrank_command("up", "--workers", "2", "--pipeline-workers", "1", "--model", str(tiny_cross_encoder),
                             "--embed-model", str(tiny_bi_encoder), "--device", "cpu", "--redis-url", private_redis,
                             "--workdir", str(tmp_path / "stack"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    up = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          start_new_session=True)
    exports: dict[str, str] = {}
    output: list[str] = []
    try:
        for line in up.stdout:  # the export lines come once every service is healthy
            output.append(line)
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if "Ctrl-C stops everything" in line:
                break
        assert {"CROSSRANK_WORKER_TARGET", "CROSSRANK_REDIS_URL", "CROSSRANK_CHROMA_URL"} <= exports.keys(), output
        assert exports["CROSSRANK_REDIS_URL"] != private_redis  # a private one, on a port of its own
        assert redis_answers(exports["CROSSRANK_REDIS_URL"]) and chroma_answers(exports["CROSSRANK_CHROMA_URL"])
        addresses = exports["CROSSRANK_WORKER_TARGET"].split(",")
        assert len(addresses) == 2 and all(grpc_serving(a) for a in addresses)

        # The user's flow, through the CLI, against the stack.
        user_env = {**env, **exports}
        corpus = _corpus(tmp_path / "corpus.jsonl", 40)
        queries = tmp_path / "queries.txt"
        queries.write_text("capital of france\n天气\nhow do rerankers work\n", encoding="utf-8")
        indexed = _cli(user_env, "index", str(corpus), "--collection", "up-e2e", "--wait")
        assert indexed["state"] == "done" and indexed["counts"]["indexed"] == 40
        job = _cli(user_env, "jobs", "rerank", "--collection", "up-e2e", "--queries", str(queries),
                   "--initial-k", "8", "--top-k", "3", "--wait")
        assert job["state"] == "done" and job["progress"] == {"done": 3, "total": 3}
        assert job["counts"]["pairs"] == 24 and job["counts"]["records"] == 9
        records = _cli(user_env, "jobs", "results", job["id"])
        assert len(records) == 9
        for qid in ("q1", "q2", "q3"):
            scores = [r["score"] for r in records if r["query_id"] == qid]
            assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    finally:
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        rest, _ = up.communicate(timeout=120)
    assert up.returncode == 0, "".join(output) + rest
    assert "stopping" in rest
    # Every service is gone: nothing answers where the stack was.
    assert not redis_answers(exports["CROSSRANK_REDIS_URL"])
    with pytest.raises(OSError):
        chroma_answers(exports["CROSSRANK_CHROMA_URL"])
    for address in addresses:
        host, port = address.rsplit(":", 1)
        with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
            pass


@pytest.mark.slow
def test_jobs_spread_over_two_workers_and_carry_on_when_one_stops(
        tiny_cross_encoder, tiny_bi_encoder, tmp_path, redis_db13, monkeypatch):
    # Small chunks and batches: many Embed calls, so both workers get some before one stops.
    monkeypatch.setenv("CROSSRANK_INDEX_CHUNK_SIZE", "5")
    monkeypatch.setenv("CROSSRANK_EMBED_BATCH_SIZE", "5")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    stack = LocalStack(workers=2, pipeline_workers=1, model=str(tiny_cross_encoder),
                       embed_model=str(tiny_bi_encoder), device="cpu", redis_url=redis_db13,
                       worker_args=("--json-logs", "--log-level", "DEBUG"), workdir=tmp_path / "stack")
    with stack:
        from crossrank.pipeline import api
        from crossrank.pipeline.settings import PipelineSettings

        settings = PipelineSettings.from_env({**os.environ, **stack.env})
        logs = [tmp_path / "stack" / "logs" / f"worker-{i}.log" for i in range(2)]
        job_id = api.submit_index(_corpus(tmp_path / "corpus.jsonl", 400), "failover", settings=settings)

        # Once both workers have answered Embed calls, stop the second one mid-job.
        deadline = time.monotonic() + 120
        while not all(_served(log, "embed") for log in logs):
            assert time.monotonic() < deadline, "the job's calls never reached both workers"
            time.sleep(0.05)
        stopped = next(p for p in stack.processes if p.name == "worker-1")
        stopper = threading.Thread(target=stopped.stop)
        stopper.start()

        job = api.wait(job_id, timeout=300, settings=settings)
        stopper.join()
        assert not stopped.running()
        assert job.state == "done", job.errors
        assert job.counts["indexed"] == 400 and job.done == 400 and job.error_count == 0
        assert _served(logs[0], "embed") > 0 and _served(logs[1], "embed") > 0


def test_without_redis_or_redis_server_it_says_what_to_start(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server to start
    stack = LocalStack(redis_url=f"redis://127.0.0.1:{free_port()}/0", workdir=tmp_path)
    with pytest.raises(ServiceFailed, match=r"(?s)redis-server is not on the PATH.*docker run.*CROSSRANK_REDIS_URL"):
        stack.start()
    assert stack.processes == []


def test_stack_refuses_embedded_chroma_with_several_writers():
    with pytest.raises(ValueError, match="one writing process"):
        LocalStack(pipeline_workers=2, embedded_chroma=True)


@pytest.mark.slow
def test_demo_runs_the_whole_flow(tiny_cross_encoder, tiny_bi_encoder, redis_db13):
    """The README's main job, with tiny models: a direct rerank, an index job, a rerank job, results."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CROSSRANK_MODEL": str(tiny_cross_encoder),
           "CROSSRANK_EMBED_MODEL": str(tiny_bi_encoder), "CROSSRANK_REDIS_URL": redis_db13,
           "CROSSRANK_DEVICE": "cpu", "COLUMNS": "200"}
    result = subprocess.run(crossrank_command("demo"), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "什么是RAG技术？" in out and "index job" in out and "rerank job" in out
    for query_id in ("q-rag-zh", "q-rerank-en", "q-capital-zh"):
        assert f"{query_id}:" in out
    assert "The demo stack stops now" in out
