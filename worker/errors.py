"""Exceptions the engine raises; the server maps each to one gRPC status code.

    WorkerError
    ├── InvalidInputError    INVALID_ARGUMENT   the request can never succeed as sent
    │   └── TooLongError                        documents over the model's input, refused as asked
    ├── OverloadedError      RESOURCE_EXHAUSTED the queue is full; retry later or elsewhere
    ├── NotReadyError        UNAVAILABLE        the model is still loading
    ├── NotServedError       FAILED_PRECONDITION this worker does not serve the asked-for model
    ├── CancelledError       CANCELLED          the caller went away before the work finished
    └── DeadlineError        DEADLINE_EXCEEDED  the request's deadline passed, or would before its turn

    ModelRefusedError (a ValueError, no request's error): the worker refuses to start with this model
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInputError(WorkerError):
    pass


class TooLongError(InvalidInputError):
    """Documents longer than the model's input, where the caller asked for them to be refused."""

    def __init__(self, message: str, max_length: int, longest: int):
        super().__init__(message)
        self.max_length = max_length
        self.longest = longest


class OverloadedError(WorkerError):
    pass


class NotReadyError(WorkerError):
    pass


class NotServedError(WorkerError):
    pass


class CancelledError(WorkerError):
    pass


class DeadlineError(WorkerError):
    pass


class ModelRefusedError(ValueError):
    """A model the worker will not serve (it would answer wrong scores), said in one line at start."""
