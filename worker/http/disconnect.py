"""Run an engine call for an HTTP request, and drop its queued work if the client goes away.

gRPC cancels a call's ticket when the caller cancels or times out; over HTTP the same
signal is the connection closing (an HTTP client that times out closes it). The event loop
awaits the engine request and `http.disconnect` together, without holding a thread.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from starlette.requests import Request

from crossrank.worker.engine import Request as EngineRequest

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def cancel_on_disconnect(request: Request, submitted: EngineRequest[T]) -> T:
    """The engine request's outcome; it is cancelled (its queued work dropped) if the client disconnects first."""
    work = asyncio.ensure_future(submitted.outcome())
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this handler is cancelled, as a server's shutdown does past its grace period
        watch.cancel()
        if not work.done():
            submitted.cancel()  # the outcome is then the engine's CancelledError, answered to no one
            work.add_done_callback(_read)  # read when it comes: no "exception was never retrieved"
    return await work


def _read(work: asyncio.Future) -> None:
    if not work.cancelled():
        work.exception()
