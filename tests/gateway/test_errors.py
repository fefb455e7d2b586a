"""Errors come back as JSON with the HTTP code that mirrors the gRPC status."""

from __future__ import annotations

import httpx
import pytest
from support.workers import worker_settings

DOCS = ["paris is in france", "berlin is in germany", "the weather is cold"]


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/rerank", {"query": "q"}, 422, "neither `texts` nor `documents`: send `texts` for TEI's shape"),
        ("/rerank", {"query": "q", "texts": DOCS, "documents": DOCS}, 422, "both `texts` and `documents`"),
        ("/rerank", {"texts": DOCS}, 422, "query: Field required"),
        ("/rerank", {"documents": DOCS, "top_n": -1}, 422, "top_n"),
        ("/rerank", {"query": "q", "texts": []}, 422, "no documents"),
        ("/rerank", {"query": "  ", "texts": DOCS}, 422, "query is empty"),
        ("/rerank", {"query": "q", "texts": DOCS, "truncation_direction": "up"}, 422, "truncation_dir"),
        ("/v2/rerank", {"model": "m", "query": "q", "documents": DOCS, "top_n": 0}, 422, "top_n"),
        ("/v2/rerank", {"model": "m", "query": "q", "documents": [{"title": "no text"}]}, 422, "documents"),
    ],
)
def test_bad_input_is_422(http, path, body, status, says):
    response = http.post(path, json=body)
    assert response.status_code == status
    error = response.json()
    assert error["error_type"] == "Validation"
    assert says in error["error"] and error["message"] == error["error"]


def test_body_that_is_not_json_is_400(http):
    response = http.post("/rerank", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "request body is not valid JSON"


def test_too_many_documents_is_422(http, gateway):
    limit = gateway.settings.max_documents_per_request
    response = http.post("/rerank", json={"query": "q", "texts": ["doc"] * (limit + 1)})
    assert response.status_code == 422
    assert f"limit of {limit}" in response.json()["error"]


def test_full_queue_is_429(tiny_cross_encoder):
    from crossrank.worker.server import create_server

    # Two inputs fit the queue (the warm-up needs them); a request of three never does.
    server = create_server(worker_settings(tiny_cross_encoder, http_port=-1, max_queue_pairs=2))
    try:
        assert server.wait_ready(120), server.engine.load_error
        url = f"http://127.0.0.1:{server.http_port}/rerank"
        response = httpx.post(url, json={"query": "q", "texts": DOCS})
    finally:
        server.stop(0)
    assert response.status_code == 429
    assert response.json()["error_type"] == "Overloaded"
    assert "queue full" in response.json()["error"]


def test_loading_worker_is_503(tiny_cross_encoder):
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, http_port=-1), load=False)
    try:
        base = f"http://127.0.0.1:{server.http_port}"
        health = httpx.get(f"{base}/health")
        rerank = httpx.post(f"{base}/rerank", json={"query": "q", "texts": DOCS})
    finally:
        server.stop(0)
    assert health.status_code == 503
    assert rerank.status_code == 503
    assert rerank.json()["error_type"] == "Unhealthy"
    assert "still loading" in rerank.json()["error"]
