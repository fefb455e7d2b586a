"""The Node.js example (client/examples/node) against a real `crossrank serve` process.

`npm ci` installs its locked dependencies, then `node rerank.js --json` must rank exactly as the
Python SDK does: same indices, same scores (float32 from the wire, so equal, not close), over
both Rerank and RerankStream; errors must exit non-zero with the gRPC status on stderr, and the
bearer token must reach a worker that wants one (an in-process worker, cheaper than a second
process). Skipped only where node or npm is missing; a
failing `npm ci` (no registry, bad lockfile) fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from support.paths import ROOT
from support.workers import worker_in_process

from crossrank.client import CrossrankClient
from crossrank.common.net import free_port

NODE_DIR = ROOT / "client" / "examples" / "node"
QUERY = "什么是RAG技术？ what is retrieval augmented generation"
DOCS = [
    "RAG是检索增强生成技术，结合检索与生成",
    "向量数据库存储高维向量",
    "北京是中国的首都",
    "retrieval augmented generation is a search technology for large language models",
    "the weather is cold in berlin",
]
TOKEN = "node-s3cret"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                                    reason="node and npm are needed to run the Node.js client example")]


@pytest.fixture(scope="module")
def node_modules() -> None:
    """`npm ci`: exactly the versions of package-lock.json, into the (gitignored) node_modules."""
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, f"npm ci failed in {NODE_DIR}:\n{result.stdout}\n{result.stderr}"
    assert (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir()


@pytest.fixture(scope="module")
def token_worker(tiny_cross_encoder) -> Iterator:
    """An in-process worker that wants `authorization: Bearer TOKEN` on Reranker calls."""
    with worker_in_process(tiny_cross_encoder, auth_token=TOKEN) as server:
        yield server


def node(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # None of the caller's CROSSRANK_* variables leak in: each test says what the client sees.
    base = {k: v for k, v in os.environ.items() if not k.startswith("CROSSRANK_")}
    return subprocess.run(["node", "rerank.js", *args], cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=60, env={**base, **(env or {})})


def node_json(*args: str, env: dict[str, str] | None = None) -> dict:
    result = node("--json", "--timeout", "30", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_same_ranking(out: dict, expected, docs: list[str]) -> None:
    assert [r["index"] for r in out["results"]] == [r.index for r in expected.results]
    assert [r["score"] for r in out["results"]] == [r.score for r in expected.results]
    assert [r["rank"] for r in out["results"]] == list(range(1, len(expected.results) + 1))
    assert [r["document"] for r in out["results"]] == [docs[r.index] for r in expected.results]
    assert out["model"] == expected.model


@pytest.mark.parametrize("top_k", [0, 2])
def test_rerank_matches_the_python_client(node_modules, served, top_k):
    out = node_json("--target", served.address, "--top-k", str(top_k), QUERY, *DOCS)
    with CrossrankClient(served.address, timeout=30) as client:
        expected = client.rerank(QUERY, DOCS, top_k=top_k)
    assert len(expected.results) == (top_k or len(DOCS))
    assert out["call"] == "Rerank"
    assert_same_ranking(out, expected, DOCS)
    assert out["usage"]["pairs"] == len(DOCS) and out["usage"]["tokens"] > 0


def test_rerank_stream_matches_the_python_client(node_modules, served):
    out = node_json("--stream", QUERY, *DOCS, env={"CROSSRANK_WORKER_TARGET": served.address})
    with CrossrankClient(served.address, timeout=30) as client:
        expected = client.rerank(QUERY, DOCS)
    assert out["call"] == "RerankStream"
    assert out["target"] == served.address
    assert out["request_id"].startswith("node-")
    assert_same_ranking(out, expected, DOCS)


def test_info_matches_the_python_client(node_modules, served):
    out = node_json("--target", served.address, QUERY, DOCS[0])
    with CrossrankClient(served.address, timeout=30) as client:
        info = client.info()
    assert {k: out["info"][k] for k in ("model", "device", "dtype", "backend", "max_input_length",
                                         "max_documents_per_request", "max_characters_per_request", "version")} == {
        "model": info.model, "device": info.device, "dtype": info.dtype, "backend": info.backend,
        "max_input_length": info.max_input_length, "max_documents_per_request": info.max_documents_per_request,
        "max_characters_per_request": info.max_characters_per_request, "version": info.version,
    }


def test_table_lists_documents_best_first(node_modules, served):
    result = node("--target", served.address, QUERY, *DOCS)
    assert result.returncode == 0, result.stderr
    with CrossrankClient(served.address, timeout=30) as client:
        expected = [DOCS[r.index] for r in client.rerank(QUERY, DOCS).results]
    printed = [doc for line in result.stdout.splitlines() for doc in DOCS if line.endswith(f"  {doc}")]
    assert printed == expected, result.stdout
    assert "rank" in result.stdout and "score" in result.stdout


def test_invalid_request_exits_non_zero_with_the_status(node_modules, served):
    result = node("--target", served.address, "", DOCS[0])
    assert result.returncode == 1
    assert result.stdout == ""
    assert "INVALID_ARGUMENT" in result.stderr and "query is empty" in result.stderr


def test_unreachable_worker_exits_non_zero(node_modules):
    target = f"127.0.0.1:{free_port()}"
    result = node("--target", target, "--timeout", "10", QUERY, DOCS[0])
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr and target in result.stderr


def test_bad_arguments_exit_2(node_modules):
    result = node(QUERY)  # no documents
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_bearer_token_from_the_environment(node_modules, token_worker):
    out = node_json("--target", token_worker.address, "--stream", QUERY, *DOCS,
                    env={"CROSSRANK_AUTH_TOKEN": TOKEN})
    with CrossrankClient(token_worker.address, token=TOKEN, timeout=30) as client:
        expected = client.rerank(QUERY, DOCS)
    assert_same_ranking(out, expected, DOCS)
    assert out["info"]["model"] == expected.model


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
def test_missing_or_wrong_token_is_refused(node_modules, token_worker, token):
    env = {"CROSSRANK_AUTH_TOKEN": token} if token else None
    result = node("--target", token_worker.address, QUERY, *DOCS, env=env)
    assert result.returncode == 1
    assert "UNAUTHENTICATED" in result.stderr and "bearer token" in result.stderr
