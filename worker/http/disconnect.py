"""Run an engine call for an HTTP request, and drop its queued work if the client goes away.

gRPC cancels a call's ticket when the caller cancels or times out; over HTTP the same
signal is the connection closing (an HTTP client that times out closes it). The engine
call runs on a worker thread; meanwhile the event loop waits for `http.disconnect`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from crossrank.worker.engine import Ticket
from crossrank.worker.tickets import CallTickets

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def cancel_on_disconnect(request: Request, call: Callable[[Callable[[Ticket], None]], T]) -> T:
    """`call(ticket_hook)` on a thread; the hook's ticket is cancelled if the client disconnects first."""
    tickets = CallTickets()
    work = asyncio.ensure_future(run_in_threadpool(call, tickets.hook))
    watch = asyncio.ensure_future(_disconnected(request))
    await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
    if not work.done():
        tickets.cancel_all()
    watch.cancel()
    return await work
