"""Hypothesis against the HTTP gateway: any body, JSON or not, gets a 2xx or a 4xx with its API's error
body, never a 5xx, and the keep-alive connection goes on. Every rerank and score route is covered."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ROUTES = ["/rerank", "/v1/rerank", "/v2/rerank", "/score", "/v1/score"]
OPENAI_ROUTES = {"/score", "/v1/score"}  # vLLM's: errors in OpenAI's shape

# Any text, lone surrogates included (Hypothesis leaves them out unless asked): json.dumps escapes them
# as "\ud800", as a hostile client would send them.
text = st.text(st.one_of(st.characters(), st.sampled_from(["\ud800", "\udfff"])), max_size=200)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                           st.dictionaries(text, inner, max_size=5)), max_leaves=20)
documents = st.lists(st.one_of(text, st.fixed_dictionaries({"text": text})), max_size=60)
shaped = st.fixed_dictionaries(
    {"query": text},
    optional={"texts": st.lists(text, max_size=60), "documents": documents, "top_n": st.integers(-5, 100),
              "truncate": st.one_of(st.booleans(), st.none()), "raw_scores": json_values,
              "return_text": json_values, "return_documents": st.booleans(), "model": json_values,
              "truncation_direction": st.sampled_from(["right", "Right", "left", "Left", ""]),
              "max_tokens_per_doc": st.one_of(st.none(), st.integers(-2, 600)),
              "text_1": st.one_of(text, st.lists(text, max_size=8)),
              "text_2": st.one_of(text, st.lists(text, max_size=60)),
              "use_activation": st.one_of(st.booleans(), st.none(), text)})


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["shaped", "any json", "bytes", "mutated"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    value = draw(shaped if kind != "any json" else json_values)
    raw = json.dumps(value).encode()
    if kind == "mutated" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + draw(st.binary(max_size=4)) + raw[at + 1:]
    return raw


@pytest.fixture(scope="module")
def http(fuzzed_worker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{fuzzed_worker.http_port}", timeout=60) as client:
        yield client


@FUZZ
@given(route=st.sampled_from(ROUTES), body=bodies())
def test_any_body(http, route, body):
    response = http.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and route in OPENAI_ROUTES:
        error = response.json()["error"]
        assert error["message"] and error["type"] and error["code"] == response.status_code
    elif response.status_code >= 400:
        error = response.json()
        assert error["error"] and error["error_type"] and error["message"] == error["detail"] == error["error"]
