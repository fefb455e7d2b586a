"""Bodies no tokenizer can take, and routes that do not exist, get a 4xx in the documented error body."""

from __future__ import annotations

import pytest

LONE_SURROGATE = [
    ("/rerank", b'{"query": "q", "texts": ["a\\ud800b"]}', "texts.0"),
    ("/v2/rerank", b'{"query": "\\udc00", "documents": ["a"]}', "query"),
    ("/v2/rerank", b'{"query": "q", "documents": [{"text": "\\ud800"}]}', "documents"),
]


@pytest.mark.parametrize(("path", "body", "field"), LONE_SURROGATE)
def test_a_lone_surrogate_is_422_and_the_connection_goes_on(http, path, body, field):
    for _ in range(3):  # the keep-alive connection serves the next request each time
        response = http.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert field in response.json()["error"] and "lone surrogate" in response.json()["error"]
        assert http.post("/rerank", json={"query": "q", "texts": ["a"]}).status_code == 200


def test_a_body_that_is_not_utf8_is_400(http):
    response = http.post("/rerank", content=b'{"query": "q", "texts": ["\xff"]}',
                         headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error_type"] == "Validation"
    assert http.get("/health").status_code == 200


def test_an_unknown_route_is_404_with_the_error_body(http):
    response = http.post("/v3/rerank", json={})
    assert response.status_code == 404
    assert response.json()["error_type"] == "NotFound" and "/v2/rerank" in response.json()["error"]


def test_a_wrong_method_is_405_with_the_error_body(http):
    response = http.get("/rerank")
    assert response.status_code == 405
    assert response.json()["error_type"] == "MethodNotAllowed"
    assert response.headers["allow"] == "POST" and "use POST" in response.json()["error"]
