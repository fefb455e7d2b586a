"""Errors raised by the crossrank client.

    CrossrankError                 anything this client raises on purpose
    ├── InvalidRequestError        INVALID_ARGUMENT: fix the request; retrying will not help
    ├── AuthenticationError        UNAUTHENTICATED: missing or wrong bearer token
    ├── OverloadedError            RESOURCE_EXHAUSTED: the worker's queue is full; back off
    ├── UnavailableError           UNAVAILABLE after every retry: no worker answered in time
    ├── DeadlineExceededError      DEADLINE_EXCEEDED: the call's timeout ran out
    ├── NotServedError             FAILED_PRECONDITION: e.g. Embed on a worker without a bi-encoder
    └── ServerError                any other status: a bug or crash on the worker side

Each carries `code` (the grpc.StatusCode) and `details` (the worker's message).
"""

from __future__ import annotations

import grpc


class CrossrankError(Exception):
    code: grpc.StatusCode | None = None

    def __init__(self, details: str, code: grpc.StatusCode | None = None):
        super().__init__(details)
        self.details = details
        if code is not None:
            self.code = code


class InvalidRequestError(CrossrankError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class AuthenticationError(CrossrankError):
    code = grpc.StatusCode.UNAUTHENTICATED


class OverloadedError(CrossrankError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(CrossrankError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(CrossrankError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotServedError(CrossrankError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ServerError(CrossrankError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[CrossrankError]] = {
    cls.code: cls  # type: ignore[misc]
    for cls in (InvalidRequestError, AuthenticationError, OverloadedError, UnavailableError,
                DeadlineExceededError, NotServedError)
}


def from_status(code: grpc.StatusCode, details: str) -> CrossrankError:
    return _BY_CODE.get(code, ServerError)(details or code.name, code)


def from_code_value(value: int, details: str) -> CrossrankError:
    """From a numeric google.rpc.Code, as carried in a stream response's `error`."""
    code = next((c for c in grpc.StatusCode if c.value[0] == value), grpc.StatusCode.UNKNOWN)
    return from_status(code, details)


__all__ = [
    "AuthenticationError", "CrossrankError", "DeadlineExceededError", "InvalidRequestError",
    "NotServedError", "OverloadedError", "ServerError", "UnavailableError",
]
