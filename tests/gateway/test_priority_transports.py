"""`priority` reaches the engine from every transport: the SDKs (unary, stream, Score), the CLI,
and the HTTP routes that take it (Cohere's v2 and Jina's /v1/rerank, vLLM's /rerank and /score).

What the engine saw is read where an operator reads it: the pairs scored per priority class.
"""

from __future__ import annotations

import subprocess

import pytest
from support.clients import CLIENT_KINDS, open_client
from support.workers import crossrank_command

from crossrank.client import RerankRequest

QUERY = "capital of france"
DOCS = ["paris", "berlin", "cold weather"]


def scored(gateway, priority_class: str) -> float:
    labels = {"model": gateway.settings.model, "priority_class": priority_class}
    return gateway.engine.metrics.registry.get_sample_value("crossrank_priority_pairs_total", labels) or 0.0


def scored_by(gateway, call) -> dict[str, float]:
    """Pairs scored per class while `call()` ran (the package's worker serves one test at a time)."""
    before = {c: scored(gateway, c) for c in ("interactive", "bulk")}
    call()
    return {c: scored(gateway, c) - before[c] for c in ("interactive", "bulk")}


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_the_sdk_sends_priority_on_every_call(gateway, kind):
    with open_client(kind, gateway.address, timeout=30) as client:
        assert scored_by(gateway, lambda: client.rerank(QUERY, DOCS, priority=7)) == {"interactive": 0, "bulk": 3}
        assert scored_by(gateway, lambda: client.rerank(QUERY, DOCS)) == {"interactive": 3, "bulk": 0}
        assert scored_by(gateway, lambda: client.score([(QUERY, "paris")], priority=7)) == {"interactive": 0, "bulk": 1}
        requests = [
            RerankRequest(QUERY, DOCS, request_id="bulk", priority=7),
            {"query": QUERY, "documents": DOCS[:2], "request_id": "live", "priority": -1},
        ]
        assert scored_by(gateway, lambda: list(client.stream(requests))) == {"interactive": 2, "bulk": 3}


def test_the_cli_sends_priority(gateway):
    def rerank() -> None:
        result = subprocess.run(
            crossrank_command(
                "rerank",
                "--target",
                gateway.address,
                "--priority",
                "9",
                QUERY,
                *[a for d in DOCS for a in ("-d", d)],
                "--json",
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr

    assert scored_by(gateway, rerank) == {"interactive": 0, "bulk": 3}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/rerank", {"query": QUERY, "documents": DOCS}),  # Cohere v2
        ("/v1/rerank", {"query": QUERY, "documents": DOCS}),  # Jina's shape, vLLM's /v1/rerank
        ("/rerank", {"query": QUERY, "documents": DOCS}),  # vLLM's /rerank
        ("/score", {"text_1": QUERY, "text_2": DOCS}),  # vLLM's score
    ],
)
def test_the_gateway_maps_priority(gateway, http, path, body):
    def post(priority: int) -> None:
        response = http.post(path, json={**body, "model": "any", "priority": priority})
        assert response.status_code == 200, response.text

    assert scored_by(gateway, lambda: post(5)) == {"interactive": 0, "bulk": 3}
    assert scored_by(gateway, lambda: post(0)) == {"interactive": 3, "bulk": 0}


def test_the_gateway_refuses_a_priority_out_of_int32(http):
    response = http.post("/v2/rerank", json={"query": QUERY, "documents": DOCS, "priority": 2**31})
    assert response.status_code == 422, response.text
    assert "priority" in response.text
