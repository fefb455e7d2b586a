"""A request the engine has admitted: the one way to wait for its outcome, and to cancel it.

Transports `await` it on their event loop (gRPC's aio handlers, the HTTP gateway); code
without a loop calls `result()`. Either way, a wait that ends early (the caller went away,
cancelled or timed out) cancels the request, so its queued work is dropped, never computed
for no one. `cancel()` is safe at any time and more than once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from crossrank.worker.engine.batcher import Ticket
from crossrank.worker.errors import DeadlineError

T = TypeVar("T")


class Request(Generic[T]):
    def __init__(self, ticket: Ticket, outcome_of: Callable[[Ticket], T]):
        self._ticket = ticket
        self._outcome_of = outcome_of  # scores -> the caller's answer (ranking, usage), on the waiting thread

    @property
    def done(self) -> bool:
        return self._ticket.done

    def cancel(self) -> None:
        self._ticket.cancel()

    def add_done_callback(self, callback: Callable[[Request[T]], Any]) -> None:
        """`callback(self)` once the request is done: on an engine thread, or at once if it already is."""
        self._ticket.add_done_callback(lambda _ticket: callback(self))

    def result(self, timeout: float | None = None) -> T:
        """Block until done (at most `timeout` s, else until the request's deadline) and return its outcome."""
        ticket = self._ticket
        if timeout is None and ticket.deadline is not None:
            timeout = max(0.0, ticket.deadline - time.perf_counter())
        try:
            if not ticket.wait(timeout):
                ticket.fail(DeadlineError("deadline passed before the request was scored; its work was dropped"))
        finally:
            self.cancel()  # a no-op once the ticket is done
        return self._outcome_of(ticket)

    async def outcome(self) -> T:
        """Wait on the running event loop without holding a thread; cancelled with the awaiting task."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not finished.done():
                finished.set_result(None)

        def from_engine_thread(_request: Request[T]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the server, and the caller, are gone
                loop.call_soon_threadsafe(wake)

        self.add_done_callback(from_engine_thread)
        try:
            await finished
        finally:
            self.cancel()  # a no-op once done; else the caller went away and nothing is scored for it
        return self._outcome_of(self._ticket)

    def __await__(self) -> Generator[Any, None, T]:
        return self.outcome().__await__()
