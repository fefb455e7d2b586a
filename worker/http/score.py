"""vLLM's score API (POST /score, /v1/score): `text_1` against `text_2`, scores in input order.

The request and response match vllm/entrypoints/pooling/score/protocol.py (ScoreRequest,
ScoreResponse) field for field, and the pairing follows vLLM's rule
(_validate_score_input_lens in vllm/entrypoints/pooling/score/utils.py): one text_1 against
every text_2 (1:N), or as many of each, paired in order (N:N).
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from crossrank.worker.engine import ScoreOutcome
from crossrank.worker.errors import InvalidInputError
from crossrank.worker.http.schemas import Priority, Text


class ScoreRequest(BaseModel):
    model: Text | None = None
    text_1: Text | list[Text]
    text_2: Text | list[Text]
    # vLLM's switch for the classifier's activation: false gives the model's logits, as raw_scores does.
    use_activation: bool | None = None
    priority: Priority = 0  # vLLM's: lower is handled sooner


class ScoreData(BaseModel):
    index: int
    object: str = "score"
    score: float


class ScoreUsage(BaseModel):
    """vLLM's UsageInfo: scoring generates nothing, so every token is a prompt token."""

    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0
    prompt_tokens_details: None = None


class ScoreResponse(BaseModel):
    id: str
    object: str = "list"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    data: list[ScoreData]
    usage: ScoreUsage


def score_pairs(req: ScoreRequest) -> list[tuple[str, str]]:
    """vLLM's pairing: 1:1, 1:N or N:N, in its own words when the lengths fit none of them."""
    firsts = [req.text_1] if isinstance(req.text_1, str) else req.text_1
    seconds = [req.text_2] if isinstance(req.text_2, str) else req.text_2
    if len(firsts) > 1 and len(firsts) != len(seconds):
        raise InvalidInputError(
            f"Input lengths must be either 1:1, 1:N or N:N; got {len(firsts)} text_1 "
            f"and {len(seconds)} text_2: send one text_1, or one per text_2"
        )
    if not firsts:
        raise InvalidInputError("At least one text element must be given in text_1")
    if not seconds:
        raise InvalidInputError("At least one text_pair element must be given in text_2")
    if len(firsts) == 1:
        firsts = firsts * len(seconds)
    return list(zip(firsts, seconds, strict=True))


def score_response(outcome: ScoreOutcome, model: str, request_id: str) -> ScoreResponse:
    return ScoreResponse(
        id=f"score-{request_id}",
        model=model,
        data=[ScoreData(index=i, score=score) for i, score in enumerate(outcome.scores)],
        usage=ScoreUsage(prompt_tokens=outcome.usage.tokens, total_tokens=outcome.usage.tokens),
    )
