"""The one map from engine exceptions to gRPC status codes."""

from __future__ import annotations

import grpc

from crossrank.worker.errors import (
    CancelledError,
    DeadlineError,
    InvalidInputError,
    NotReadyError,
    NotServedError,
    OverloadedError,
    WorkerError,
)

_CODES: dict[type[WorkerError], grpc.StatusCode] = {
    InvalidInputError: grpc.StatusCode.INVALID_ARGUMENT,
    OverloadedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    NotReadyError: grpc.StatusCode.UNAVAILABLE,
    NotServedError: grpc.StatusCode.FAILED_PRECONDITION,
    CancelledError: grpc.StatusCode.CANCELLED,
    DeadlineError: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_of(exc: BaseException) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in _CODES:
            return _CODES[cls]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def message_of(exc: BaseException) -> str:
    if isinstance(exc, WorkerError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"
