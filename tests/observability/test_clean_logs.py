"""The worker's log holds no terminal colour codes and no misleading tokenizer warning."""

from __future__ import annotations

import httpx

from crossrank.client import CrossrankClient


def test_no_colour_codes_and_no_sequence_length_warning(observed_worker):
    long_text = "rag " * 2000  # far past the tiny model's input: tokenized whole, then refused or windowed
    response = httpx.post(f"{observed_worker.http_url}/rerank",
                          json={"query": "q", "texts": [long_text], "truncate": False}, timeout=30)
    assert response.status_code == 422
    with CrossrankClient(observed_worker.process.address, timeout=30) as client:
        client.rerank("q", [long_text], long_document="window")
    log = observed_worker.process.output()
    assert "uvicorn" in log or "http gateway" in log  # the gateway's start-up lines are in this log
    assert "\x1b[" not in log and "color_message" not in log
    assert "Token indices sequence length" not in log
