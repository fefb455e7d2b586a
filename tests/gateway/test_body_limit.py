"""Bodies over the limit (2 MB by default, as in TEI) are answered 413 before they are parsed."""

from __future__ import annotations

import httpx

LIMIT = 2 * 1024 * 1024


def _json_of_size(size: int) -> bytes:
    head, tail = b'{"query": "q", "texts": ["', b'"]}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def test_a_body_over_the_limit_is_413(http):
    response = http.post("/rerank", content=_json_of_size(LIMIT + 1), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["error"] and "--http-max-body-bytes" in response.json()["error"]


def test_a_chunked_body_over_the_limit_is_413(http):
    """Without a Content-Length, the gate counts what arrives and stops reading at the limit."""
    def chunks():
        body = _json_of_size(LIMIT + 64 * 1024)
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    response = http.post("/rerank", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "more than" in response.json()["error"]


def test_a_body_at_the_limit_is_read(http):
    """Exactly the limit passes the gate; the engine then refuses it for its character count, with 422."""
    response = http.post("/rerank", content=_json_of_size(LIMIT), headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "characters" in response.json()["error"]


def test_the_connection_serves_the_next_request_after_a_413(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.post("/rerank", content=_json_of_size(LIMIT + 1)).status_code == 413
        assert client.post("/rerank", json={"query": "q", "texts": ["a"]}).status_code == 200
