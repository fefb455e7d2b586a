"""--served-model-name names the model in every response and in GET /v1/models; --strict-model-name
answers a request for another model 404, in each API's own error shape."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.gateway import SERVED_NAME, serving

QUERY, DOCS = "capital of france", ["paris", "berlin"]
BODIES = [
    ("/v2/rerank", {"model": SERVED_NAME, "query": QUERY, "documents": DOCS}),
    ("/v1/rerank", {"model": SERVED_NAME, "query": QUERY, "documents": DOCS}),
    ("/rerank", {"model": SERVED_NAME, "query": QUERY, "documents": DOCS}),
    ("/score", {"model": SERVED_NAME, "text_1": QUERY, "text_2": DOCS}),
    ("/v1/score", {"model": SERVED_NAME, "text_1": QUERY, "text_2": DOCS}),
]


@pytest.mark.parametrize(("path", "body"), BODIES)
def test_responses_name_the_served_model_and_any_name_is_served(secured_http, path, body):
    for model in (SERVED_NAME, "some-other-model"):
        response = secured_http.post(path, json={**body, "model": model})
        assert response.status_code == 200, response.text
        assert response.json()["model"] == SERVED_NAME


def test_models_lists_the_served_name_in_openais_shape(secured_http, secured):
    body = secured_http.get("/v1/models").json()
    assert body["object"] == "list" and len(body["data"]) == 1
    card = body["data"][0]
    assert card["id"] == SERVED_NAME and card["object"] == "model" and card["owned_by"]
    assert card["root"] == secured.settings.model and isinstance(card["created"], int)
    assert secured_http.get("/info").json()["model_id"] == SERVED_NAME


@pytest.fixture(scope="module")
def strict(tiny_cross_encoder) -> Iterator[httpx.Client]:
    with (
        serving(tiny_cross_encoder, served_model_name=SERVED_NAME, strict_model_name=True) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client,
    ):
        yield client


@pytest.mark.parametrize(("path", "body"), BODIES)
def test_strict_refuses_another_model_with_404_naming_the_served_one(strict, path, body):
    assert strict.post(path, json=body).status_code == 200
    assert strict.post(path, json={k: v for k, v in body.items() if k != "model"}).status_code == 200

    response = strict.post(path, json={**body, "model": "rerank-v3.5"})
    assert response.status_code == 404
    error = response.json()
    message = error["error"]["message"] if "score" in path else error["detail"]
    assert "`rerank-v3.5` does not exist" in message and SERVED_NAME in message
