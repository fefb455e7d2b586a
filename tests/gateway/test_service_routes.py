"""Health, info, the OpenAPI schema and request counting: what an operator of the gateway sees."""

from __future__ import annotations

import httpx
import pytest
from support.workers import worker_settings


def test_health_when_ready(http):
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "SERVING"}


def test_info_matches_grpc(http, grpc_client):
    info = http.get("/info").json()
    expected = grpc_client.info()
    assert info["model"] == expected.model
    assert info["max_documents_per_request"] == expected.max_documents_per_request


def test_openapi_lists_every_route(http):
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/v1/rerank", "/v2/rerank", "/rerank", "/score", "/v1/score", "/health", "/info", "/v1/models"} <= set(
        paths
    )


def test_requests_counted_by_route_and_status(http, gateway):
    registry = gateway.engine.metrics.registry

    def count(route: str, status: str) -> float:
        labels = {"route": route, "status": status}
        return registry.get_sample_value("crossrank_http_requests_total", labels) or 0

    before_ok, before_bad = count("/rerank", "200"), count("/rerank", "422")
    http.post("/rerank", json={"query": "q", "texts": ["a", "b"]})
    http.post("/rerank", json={"query": "q", "texts": []})
    http.get("/no/such/path")

    assert count("/rerank", "200") == before_ok + 1
    assert count("/rerank", "422") == before_bad + 1
    assert count("unmatched", "404") >= 1


def test_gateway_stops_with_the_server(tiny_cross_encoder):
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, http_port=-1), load=False)
    url = f"http://127.0.0.1:{server.http_port}/health"
    assert httpx.get(url).status_code == 503
    server.stop(0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_each_cohere_route_reports_its_own_api_version(http):
    body = {"model": "m", "query": "q", "documents": ["a", "b"]}
    for version in ("1", "2"):
        response = http.post(f"/v{version}/rerank", json=body)
        assert response.status_code == 200
        assert response.json()["meta"]["api_version"] == {"version": version}
