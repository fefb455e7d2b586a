"""An HTTP client that times out or disconnects has its queued pairs dropped, as over gRPC."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from support.workers import worker_settings


def test_a_client_that_times_out_has_its_pairs_dropped(tiny_cross_encoder):
    from crossrank.worker.server import create_server

    # Small batches make a big request take many forward passes, so a short timeout ends it midway.
    server = create_server(worker_settings(tiny_cross_encoder, http_port=-1, max_batch_pairs=2,
                                           max_batch_tokens=256))
    assert server.wait_ready(60)
    observer = server.engine.metrics.observer(server.settings.model)
    url = f"http://127.0.0.1:{server.http_port}/rerank"
    try:
        docs = [f"document number {i} " * 8 for i in range(1000)]
        with pytest.raises(httpx.TimeoutException):
            httpx.post(url, json={"query": "query", "texts": docs}, timeout=0.3)
        time.sleep(1.0)  # let the gateway notice and the batcher drain
        scored, dropped = observer.value("pairs"), observer.value("dropped_pairs")
        assert dropped > 0, "the abandoned request's pairs should be dropped"
        assert scored < 1000 + 3, f"{scored} pairs scored: the abandoned request ran to the end"
        assert httpx.post(url, json={"query": "q", "texts": ["a"]}, timeout=30).status_code == 200
    finally:
        server.stop(0)


def test_a_cancelled_handler_leaves_no_outcome_unread():
    """Shutdown cancels a handler past its grace period while its request is still queued; the request is
    cancelled, and the error it ends with later is read, not logged as "Task exception was never retrieved"."""
    from crossrank.worker.engine import Request as EngineRequest
    from crossrank.worker.engine.batcher import Ticket
    from crossrank.worker.errors import OverloadedError
    from crossrank.worker.http.disconnect import cancel_on_disconnect

    class Connected:  # a client that never disconnects
        async def receive(self):
            await asyncio.Event().wait()

    async def scenario() -> list[dict]:
        unread: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: unread.append(context))
        ticket = Ticket(deadline=None, priority=0)
        handler = asyncio.ensure_future(cancel_on_disconnect(Connected(), EngineRequest(ticket, Ticket.result)))
        await asyncio.sleep(0.05)
        handler.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handler
        assert ticket.done  # cancelled with its handler: nothing is scored for it
        ticket.fail(OverloadedError("worker is shutting down"))  # a no-op on a done ticket
        await asyncio.sleep(0.05)
        return unread

    async def collected() -> list[dict]:
        unread = await scenario()
        import gc

        gc.collect()  # an unread task's exception is reported when the task is collected
        await asyncio.sleep(0)
        return unread

    assert asyncio.run(collected()) == []
