"""`crossrank serve` as a real process, then `crossrank rerank` and `crossrank info` against it."""

import json
import subprocess

import pytest
from support.workers import crossrank_command, serving_worker

QUERY = "什么是RAG技术？"
DOCS = ["RAG是检索增强生成技术", "向量数据库存储向量", "北京是中国的首都"]


@pytest.fixture(scope="module")
def served(tiny_cross_encoder, tiny_bi_encoder):
    with serving_worker(tiny_cross_encoder, tiny_bi_encoder) as process:
        yield process


def crossrank(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(crossrank_command(*args), capture_output=True, text=True, timeout=120, env=env)


def test_rerank_json_matches_the_sdk(served):
    from crossrank.client import CrossrankClient

    args = ["rerank", "--target", served.address, QUERY, *[a for d in DOCS for a in ("-d", d)], "--json"]
    result = crossrank(*args)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    with CrossrankClient(served.address) as client:
        expected = client.rerank(QUERY, DOCS)
    assert [r["index"] for r in out["results"]] == [r.index for r in expected.results]
    assert [r["rank"] for r in out["results"]] == [1, 2, 3]
    assert out["results"][0]["document"] == DOCS[out["results"][0]["index"]]


def test_rerank_prints_a_ranked_table_from_a_docs_file(served, tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({"text": d}, ensure_ascii=False) for d in DOCS) + "\n", encoding="utf-8")
    result = crossrank("rerank", "--target", served.address, QUERY, "--docs-file", str(docs), "--top-k", "2")
    assert result.returncode == 0, result.stderr
    assert "rank" in result.stdout and "score" in result.stdout and QUERY in result.stdout
    lines = [line for line in result.stdout.splitlines() if any(d in line for d in DOCS)]
    assert len(lines) == 2, result.stdout


def test_target_from_the_environment_and_info(served):
    import os

    env = {**os.environ, "CROSSRANK_WORKER_TARGET": served.address}
    result = crossrank("info", "--json", env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["device"] == "cpu" and info["max_input_length"] == 128


def test_errors_are_one_clear_line(served):
    result = crossrank("rerank", "--target", served.address, "", "-d", "doc")
    assert result.returncode == 1
    assert "InvalidRequestError: query is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_bad_settings():
    result = crossrank("serve", "--dtype", "fp8", "--port", "0")
    assert result.returncode == 2
    assert "--dtype" in result.stderr and "'fp8' is not one of 'auto', 'fp32', 'fp16', 'bf16'" in result.stderr
