"""A stopping worker, as both transports see it.

From SIGTERM on, new HTTP requests get 503 and work the engine refuses because it is
stopping is reported as UNAVAILABLE (HTTP 503), never as a full queue or an internal
error: clients retry UNAVAILABLE and 503 on another worker.
"""

from __future__ import annotations

import threading

from crossrank.worker.errors import NotReadyError, OverloadedError

SHUTTING_DOWN = "worker is shutting down; retry on another worker"


class Drain:
    def __init__(self) -> None:
        self._started = threading.Event()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def begin(self) -> None:
        self._started.set()

    def reported(self, exc: BaseException) -> BaseException:
        """The error a caller sees: once draining, a refusal is 'shutting down', which is UNAVAILABLE."""
        if self.started and isinstance(exc, OverloadedError):
            return NotReadyError(SHUTTING_DOWN)
        return exc
