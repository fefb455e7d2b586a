"""With --json-logs, each request leaves a JSON log line that carries its request id."""

from __future__ import annotations

import json
import time

import httpx

from crossrank.client import CrossrankClient


def log_entries(worker, request_id: str, timeout: float = 10, messages: frozenset[str] = frozenset()) -> list[dict]:
    """JSON lines for one request id, once they hold `messages` (lines are written as each part of the
    call ends); the worker's stderr also holds non-JSON lines (progress bars)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = []
        for line in worker.process.output().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("request_id") == request_id:
                    entries.append(entry)
        if (entries and messages <= {e["msg"] for e in entries}) or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def test_grpc_request_logged_with_its_id(observed_worker):
    with CrossrankClient(observed_worker.process.address, timeout=30) as client:
        client.rerank("capital of france", ["paris is the capital of france", "cold weather"],
                      request_id="obs-grpc-1")
    [entry] = log_entries(observed_worker, "obs-grpc-1")
    assert entry["msg"] == "rerank done"
    assert entry["logger"] == "crossrank.worker.engine"
    assert entry["pairs"] == 2 and entry["tokens"] > 0 and entry["queue_ms"] >= 0


def test_http_request_logged_with_its_id(observed_worker):
    httpx.post(f"{observed_worker.http_url}/rerank", json={"query": "q", "texts": ["a", "b"]},
               headers={"X-Request-Id": "obs-http-1"}, timeout=30)
    entries = log_entries(observed_worker, "obs-http-1", messages=frozenset({"rerank done", "http POST /rerank"}))
    messages = {e["msg"] for e in entries}
    assert {"rerank done", "http POST /rerank"} <= messages
    assert next(e for e in entries if e["msg"] == "http POST /rerank")["status"] == 200


def test_every_line_names_its_process_when_split(observed_worker):
    roles = [json.loads(line).get("role") for line in observed_worker.process.output().splitlines()
             if line.startswith("{")]
    assert roles
    if observed_worker.frontends:
        assert set(roles) == {"serve", "core", "frontend-0", "frontend-1"}
    else:
        assert set(roles) == {None}  # one process: nothing to tell apart
