"""The crossrank.v1.Reranker servicer on grpc.aio: convert, call the engine, convert back.

Handlers are coroutines on the server's event loop. Every request is validated and admitted
(or refused with RESOURCE_EXHAUSTED) the moment its message arrives, then awaits its engine
request without holding a thread, so no request queues unseen in a thread pool.

Admission comes first, on the request's count of inputs alone, before its texts are copied out of
the message: a refusal is most of what a worker does under a herd, and the copy was the largest
part of our own cost in one (TEI, too, takes its permit before it reads the input). So a request
that is both invalid and over the limit gets RESOURCE_EXHAUSTED; retried when there is room, it
gets INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc

from crossrank.protos import pb, pb_grpc
from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine, Request, RerankOutcome
from crossrank.worker.grpc import convert
from crossrank.worker.grpc.decode import MalformedMessage
from crossrank.worker.status import message_of, status_of

log = logging.getLogger(__name__)


class RerankerServicer(pb_grpc.RerankerServicer):
    def __init__(self, engine: Engine, drain: Drain):
        self.engine = engine
        self.drain = drain
        self._started = time.monotonic()  # the worker starts loading as it starts serving

    def _rerank_error(self, request_id: str, exc: BaseException) -> pb.RerankResponse:
        exc = self.drain.reported(exc)
        return convert.rerank_error(request_id, status_of(exc).value[0], message_of(exc))

    def _admit_count(self, inputs: int, priority: int, context: grpc.aio.ServicerContext) -> float | None:
        """Admit on the count of inputs alone, before the texts are copied out (each a new str; see above);
        returns the time the call's deadline leaves. The engine admits the whole request again, which
        costs microseconds beside its tokenizing, and counts windows the count here cannot."""
        timeout = context.time_remaining()
        self.engine.admit(inputs, timeout, priority=priority)
        return timeout

    async def Rerank(self, request: pb.RerankRequest, context: grpc.aio.ServicerContext) -> pb.RerankResponse:
        # gRPC cancels the wait when the caller cancels or its deadline passes; the request is then dropped.
        timeout = self._admit_count(len(request.documents), request.priority, context)
        query = convert.rerank_query(request)
        return convert.rerank_response(await self.engine.submit_rerank(query, timeout=timeout))

    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        timeout = self._admit_count(len(request.pairs), request.priority, context)
        outcome = await self.engine.submit_score(convert.score_pairs(request), request.raw_scores,
                                                 convert.score_mode(request), timeout,
                                                 request.request_id, convert.instruction(request), request.priority)
        return convert.score_response(request.request_id, self.engine.settings.model, outcome)

    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        outcome = await self.engine.submit_embed(list(request.texts), request.normalize, context.time_remaining(),
                                                 request.request_id, request.priority)
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
        answers: asyncio.Queue[pb.RerankResponse | tuple[str, Request[RerankOutcome]] | None] = asyncio.Queue()
        pending: dict[int, Request[RerankOutcome]] = {}  # by id; the finished leave: a stream holds only live ones

        def on_done(request_id: str, done: Request[RerankOutcome]) -> None:  # on an engine thread
            with contextlib.suppress(RuntimeError):  # the loop has closed: the stream, and its caller, are gone
                loop.call_soon_threadsafe(answers.put_nowait, (request_id, done))
        read = {"sent": 0}
        malformed: list[MalformedMessage] = []

        async def reader() -> None:
            try:
                async for request in request_iterator:
                    read["sent"] += 1
                    try:
                        timeout = self._admit_count(len(request.documents), request.priority, context)
                        submitted = self.engine.submit_rerank(convert.rerank_query(request), timeout=timeout)
                        pending[id(submitted)] = submitted
                        submitted.add_done_callback(lambda r, rid=request.request_id: on_done(rid, r))
                    except Exception as exc:
                        answers.put_nowait(self._rerank_error(request.request_id, exc))
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
                    request_id, done = item
                    pending.pop(id(done), None)
                    try:
                        item = convert.rerank_response(done.result())
                    except Exception as exc:
                        item = self._rerank_error(request_id, exc)
                answered += 1
                yield item
        finally:  # also when the caller goes away: nothing it sent is scored for nobody
            reading.cancel()
            for submitted in list(pending.values()):
                submitted.cancel()
        if malformed:
            raise malformed[0]
