"""The crossrank.v1.Reranker servicer on grpc.aio: convert, call the engine, convert back.

Handlers are coroutines on the server's event loop. A rerank is validated and admitted
(or refused with RESOURCE_EXHAUSTED) the moment its message arrives, then waits for its
ticket without holding a thread, so no request queues unseen in a thread pool. Score and
Embed, which the engine serves as blocking calls, run on a thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar

import grpc

from crossrank.protos import pb, pb_grpc
from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine, RerankQuery, Ticket
from crossrank.worker.grpc import convert
from crossrank.worker.grpc.decode import MalformedMessage
from crossrank.worker.grpc.window_limits import check_window_request
from crossrank.worker.status import message_of, status_of
from crossrank.worker.tickets import CallTickets

log = logging.getLogger(__name__)
T = TypeVar("T")


def _waker(loop: asyncio.AbstractEventLoop, on_done: Callable[[Ticket], None]) -> Callable[[Ticket], None]:
    """A ticket hook, called on an engine thread, that runs `on_done` on the event loop."""
    def wake(ticket: Ticket) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is gone, and the caller
            loop.call_soon_threadsafe(on_done, ticket)
    return wake


class RerankerServicer(pb_grpc.RerankerServicer):
    def __init__(self, engine: Engine, drain: Drain, blocking: Executor):
        self.engine = engine
        self.drain = drain
        self._blocking = blocking
        self._started = time.monotonic()  # the worker starts loading as it starts serving

    def _rerank_error(self, request_id: str, exc: BaseException) -> pb.RerankResponse:
        exc = self.drain.reported(exc)
        return convert.rerank_error(request_id, status_of(exc).value[0], message_of(exc))

    def _query(self, request: pb.RerankRequest) -> RerankQuery:
        query = convert.rerank_query(request)
        check_window_request(query, self.engine.settings)
        return query

    async def Rerank(self, request: pb.RerankRequest, context: grpc.aio.ServicerContext) -> pb.RerankResponse:
        query = self._query(request)
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def resolve(_ticket: Ticket) -> None:
            if not finished.done():
                finished.set_result(None)

        ticket = self.engine.submit_rerank(query, _waker(asyncio.get_running_loop(), resolve),
                                           timeout=context.time_remaining())
        try:
            await finished  # gRPC cancels this wait when the caller cancels or its deadline passes
        finally:
            ticket.cancel()  # a no-op once the ticket is done
        return convert.rerank_response(self.engine.finish_rerank(query, ticket))

    async def _blocking_call(self, call: Callable[[Callable[[Ticket], None]], T]) -> T:
        """`call(ticket_hook)` on the thread pool; its tickets are dropped if the caller goes away."""
        tickets = CallTickets()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._blocking, call, tickets.hook)
        except asyncio.CancelledError:
            tickets.cancel_all()
            raise

    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        pairs, mode, remaining = convert.score_pairs(request), convert.score_mode(request), context.time_remaining()
        outcome = await self._blocking_call(lambda hook: self.engine.score(
            pairs, request.raw_scores, mode, remaining, hook, request.request_id, convert.instruction(request)))
        return convert.score_response(request.request_id, self.engine.settings.model, outcome)

    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        texts, remaining = list(request.texts), context.time_remaining()
        outcome = await self._blocking_call(lambda hook: self.engine.embed(
            texts, request.normalize, remaining, hook, request.request_id))
        return convert.embed_response(request.request_id, self.engine.settings.embed_model, outcome)

    async def Info(self, request: pb.InfoRequest, context: grpc.aio.ServicerContext) -> pb.InfoResponse:
        """Answered while loading too: the state, and how long loading has taken, is what a caller needs then."""
        info = self.engine.info()
        if self.engine.ready:
            return convert.info_response(info)
        if self.engine.load_error is not None:
            return convert.info_response(info, pb.WORKER_STATE_FAILED, load_error=str(self.engine.load_error))
        return convert.info_response(info, pb.WORKER_STATE_LOADING, time.monotonic() - self._started)

    async def RerankStream(self, request_iterator: AsyncIterator[pb.RerankRequest],
                           context: grpc.aio.ServicerContext) -> AsyncIterator[pb.RerankResponse]:
        """Requests are read as they come and answered in completion order.

        A request that fails (bad input, full queue) gets a response with `error` set; the
        stream and the other requests go on. A message that cannot be parsed ends the stream
        with INVALID_ARGUMENT, after the requests received before it are answered.
        """
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[pb.RerankResponse | tuple[RerankQuery, Ticket] | None] = asyncio.Queue()
        pending: dict[int, Ticket] = {}  # by id; a finished ticket leaves, so a long stream holds only live ones
        read = {"sent": 0}
        malformed: list[MalformedMessage] = []

        async def reader() -> None:
            try:
                async for request in request_iterator:
                    query = convert.rerank_query(request)
                    read["sent"] += 1
                    try:
                        check_window_request(query, self.engine.settings)
                        ticket = self.engine.submit_rerank(
                            query, _waker(loop, lambda t, q=query: answers.put_nowait((q, t))),
                            timeout=context.time_remaining())
                        pending[id(ticket)] = ticket
                    except Exception as exc:
                        answers.put_nowait(self._rerank_error(query.request_id, exc))
            except MalformedMessage as exc:  # stop reading; what came before is still answered
                malformed.append(exc)
            finally:
                answers.put_nowait(None)

        reading = asyncio.ensure_future(reader())
        expected, answered = None, 0
        try:
            while expected is None or answered < expected:
                item = await answers.get()
                if item is None:
                    expected = read["sent"]
                    continue
                if isinstance(item, tuple):
                    query, ticket = item
                    pending.pop(id(ticket), None)
                    try:
                        item = convert.rerank_response(self.engine.finish_rerank(query, ticket))
                    except Exception as exc:
                        item = self._rerank_error(query.request_id, exc)
                answered += 1
                yield item
        finally:  # also when the caller goes away: nothing it sent is scored for nobody
            reading.cancel()
            for ticket in list(pending.values()):
                ticket.cancel()
        if malformed:
            raise malformed[0]
