"""The worker's engine: admit -> tokenize -> schedule and collate -> forward -> post.

The transports (gRPC, HTTP) import what they need from here: the Engine and its request
and result types.
"""

from crossrank.worker.engine.engine import Engine
from crossrank.worker.engine.request import Request
from crossrank.worker.engine.types import (
    EmbedOutcome,
    LongDocument,
    Ranked,
    RerankOutcome,
    RerankQuery,
    ScoreOutcome,
    Usage,
)

__all__ = ["EmbedOutcome", "Engine", "LongDocument", "Ranked", "RerankOutcome", "RerankQuery",
           "Request", "ScoreOutcome", "Usage"]
