"""The engine's request and result types, which both transports (gRPC and HTTP) convert to and from.

Nothing here knows of protobuf, JSON or tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class LongDocument(Enum):
    TRUNCATE = "truncate"
    WINDOW = "window"
    ERROR = "error"


@dataclass
class RerankQuery:
    query: str
    documents: list[str]
    top_k: int = 0
    raw_scores: bool = False
    long_document: LongDocument = LongDocument.TRUNCATE
    window_tokens: int = 0
    window_stride: int = 0
    request_id: str = ""
    return_documents: bool = False
    instruction: str | None = None  # None: the model's default prompt, if it has one
    priority: int = 0  # lower is sooner (see crossrank.common.priority)


@dataclass
class Usage:
    pairs: int = 0
    tokens: int = 0
    queue_ms: float = 0.0
    inference_ms: float = 0.0


@dataclass
class Ranked:
    index: int
    score: float


@dataclass
class RerankOutcome:
    request_id: str
    results: list[Ranked]
    usage: Usage
    model: str
    query: RerankQuery = field(repr=False, default_factory=lambda: RerankQuery("", []))


@dataclass
class ScoreOutcome:
    scores: list[float]
    usage: Usage


@dataclass
class EmbedOutcome:
    vectors: np.ndarray
    usage: Usage
