"""Plain result types of the client; no protobuf leaks past the client's edge."""

from __future__ import annotations

from dataclasses import dataclass, field

from crossrank.client.exceptions import CrossrankError
from crossrank.common.info import WorkerInfo  # noqa: F401 (one type for both sides; the SDK's result here)


@dataclass(frozen=True, slots=True)
class RerankResult:
    index: int
    score: float
    document: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    pairs: int = 0
    tokens: int = 0
    queue_ms: float = 0.0
    inference_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class RerankResponse:
    request_id: str
    results: list[RerankResult]
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    # Streams only: set when this one request failed; the stream went on.
    error: CrossrankError | None = None


@dataclass(frozen=True, slots=True)
class RerankRequest:
    """One request of `stream()`; the same knobs as `rerank()`."""

    query: str
    documents: list[str]
    request_id: str = ""
    top_k: int = 0
    return_documents: bool = False
    raw_scores: bool = False
    long_document: str = "truncate"  # truncate | window | error
    window_tokens: int = 0
    window_stride: int = 0
    instruction: str | None = None  # for models that take one; None: the model's default prompt
    priority: int = 0  # lower is served sooner; 0 is interactive, jobs send a bulk value above it


@dataclass(frozen=True, slots=True)
class ScoreResponse:
    scores: list[float]
    model: str = ""
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class EmbedResponse:
    embeddings: list[list[float]]
    dimensions: int
    model: str = ""
    usage: Usage = field(default_factory=Usage)
