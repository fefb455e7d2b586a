"""crossrank.client: the Python SDK for crossrank workers (sync and asyncio)."""

from crossrank.client._base import RetryPolicy, backoff
from crossrank.client.aio import AsyncCrossrankClient
from crossrank.client.exceptions import (
    AuthenticationError,
    CrossrankError,
    DeadlineExceededError,
    InvalidRequestError,
    NotServedError,
    OverloadedError,
    ServerError,
    UnavailableError,
)
from crossrank.client.settings import ClientSettings
from crossrank.client.sync import CrossrankClient
from crossrank.client.types import (
    EmbedResponse,
    RerankRequest,
    RerankResponse,
    RerankResult,
    ScoreResponse,
    Usage,
    WorkerInfo,
)
from crossrank.common.net import DEFAULT_TARGET

__all__ = [
    "DEFAULT_TARGET", "AsyncCrossrankClient", "AuthenticationError", "ClientSettings", "CrossrankClient",
    "CrossrankError",
    "DeadlineExceededError", "EmbedResponse", "InvalidRequestError", "NotServedError", "OverloadedError",
    "RerankRequest", "RerankResponse", "RerankResult", "RetryPolicy", "ScoreResponse", "ServerError",
    "UnavailableError", "Usage", "WorkerInfo", "backoff",
]
