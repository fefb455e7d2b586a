"""The HTTP gateway honours the same bearer token; Cohere's SDK sends it as its api_key."""

from __future__ import annotations

import cohere
import httpx
import pytest
from support.credentials import TOKEN

BODY = {"query": "capital of france", "texts": ["paris is the capital of france", "the weather is cold"]}


@pytest.fixture
def base_url(token_worker) -> str:
    return f"http://127.0.0.1:{token_worker.http_port}"


@pytest.mark.parametrize(("headers", "says"), [({}, "missing"), ({"Authorization": "Bearer nope"}, "wrong")])
def test_without_the_right_token_is_401(base_url, headers, says):
    for method, path, body in (("POST", "/rerank", BODY), ("POST", "/v2/rerank", {**BODY, "documents": []}),
                               ("GET", "/info", None)):
        response = httpx.request(method, base_url + path, json=body, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error_type"] == "Unauthorized"
        assert says in response.json()["error"]


def test_the_right_token_works(base_url):
    response = httpx.post(f"{base_url}/rerank", json=BODY, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert len(response.json()) == 2


def test_health_is_open(base_url):
    assert httpx.get(f"{base_url}/health").status_code == 200


def test_cohere_sdk_sends_its_api_key_as_the_token(base_url):
    with cohere.ClientV2(api_key=TOKEN, base_url=base_url, timeout=30) as co:
        assert len(co.rerank(model="any", query=BODY["query"], documents=BODY["texts"]).results) == 2
    with cohere.ClientV2(api_key="wrong", base_url=base_url, timeout=30) as co, \
            pytest.raises(cohere.errors.UnauthorizedError):
        co.rerank(model="any", query=BODY["query"], documents=BODY["texts"])


def test_the_token_is_checked_before_the_body_is_read(base_url):
    """A malformed body, or one over the size limit, without the token is 401: it was never parsed."""
    for body in (b"{not json", b"x" * (3 * 1024 * 1024)):
        response = httpx.post(f"{base_url}/rerank", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 401
        assert response.json()["error_type"] == "Unauthorized"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_docs_want_the_token(base_url, path):
    assert httpx.get(base_url + path).status_code == 401
    assert httpx.get(base_url + path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
