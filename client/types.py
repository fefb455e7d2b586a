"""Plain result types of the client; no protobuf leaks past the client's edge."""

from __future__ import annotations

from dataclasses import dataclass, field

from crossrank.client.exceptions import CrossrankError


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


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    model: str
    embed_model: str
    device: str
    dtype: str
    backend: str
    max_input_length: int
    max_batch_tokens: int
    max_batch_pairs: int
    max_queue_pairs: int
    max_documents_per_request: int
    max_characters_per_request: int
    max_message_bytes: int
    embed_dimensions: int
    version: str
    dtype_reason: str = ""
    tokenizer_workers: int = 0
    state: str = "ready"  # "loading" until the model is warm, "failed" when loading failed
    loading_seconds: float = 0.0
    load_error: str = ""
