"""The crossrank.v1.Reranker servicer: convert, call the engine, convert back."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator

import grpc

from crossrank.protos import pb, pb_grpc
from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine, RerankQuery, Ticket
from crossrank.worker.grpc import convert
from crossrank.worker.grpc.decode import MalformedMessage
from crossrank.worker.grpc.window_limits import check_window_request
from crossrank.worker.status import message_of, status_of

log = logging.getLogger(__name__)


def _on_rpc_end(context: grpc.ServicerContext):
    """A ticket hook that drops the ticket's queued work when the caller cancels or times out.

    gRPC refuses the callback (returns False) once the call has ended, e.g. while the
    request was still being tokenized: then the work is dropped at once.
    """
    def hook(ticket: Ticket) -> None:
        if not context.add_callback(ticket.cancel):
            ticket.cancel()
    return hook


class RerankerServicer(pb_grpc.RerankerServicer):
    def __init__(self, engine: Engine, drain: Drain):
        self.engine = engine
        self.drain = drain
        self._started = time.monotonic()  # the worker starts loading as it starts serving

    def _rerank_error(self, request_id: str, exc: BaseException) -> pb.RerankResponse:
        exc = self.drain.reported(exc)
        return convert.rerank_error(request_id, status_of(exc).value[0], message_of(exc))

    def _query(self, request: pb.RerankRequest) -> RerankQuery:
        query = convert.rerank_query(request)
        check_window_request(query, self.engine.settings)
        return query

    def Rerank(self, request: pb.RerankRequest, context: grpc.ServicerContext) -> pb.RerankResponse:
        outcome = self.engine.rerank(self._query(request), context.time_remaining(), _on_rpc_end(context))
        return convert.rerank_response(outcome)

    def Score(self, request: pb.ScoreRequest, context: grpc.ServicerContext) -> pb.ScoreResponse:
        outcome = self.engine.score(convert.score_pairs(request), request.raw_scores, convert.score_mode(request),
                                    context.time_remaining(), _on_rpc_end(context), request.request_id)
        return convert.score_response(request.request_id, self.engine.settings.model, outcome)

    def Embed(self, request: pb.EmbedRequest, context: grpc.ServicerContext) -> pb.EmbedResponse:
        outcome = self.engine.embed(list(request.texts), request.normalize, context.time_remaining(),
                                    _on_rpc_end(context), request.request_id)
        return convert.embed_response(request.request_id, self.engine.settings.embed_model, outcome)

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        """Answered while loading too: the state, and how long loading has taken, is what a caller needs then."""
        info = self.engine.info()
        if self.engine.ready:
            return convert.info_response(info)
        if self.engine.load_error is not None:
            return convert.info_response(info, pb.WORKER_STATE_FAILED, load_error=str(self.engine.load_error))
        return convert.info_response(info, pb.WORKER_STATE_LOADING, time.monotonic() - self._started)

    def RerankStream(self, request_iterator, context: grpc.ServicerContext) -> Iterator[pb.RerankResponse]:
        """Requests are read on a thread of their own and answered in completion order.

        A request that fails (bad input, full queue) gets a response with `error` set; the
        stream and the other requests go on. A message that cannot be parsed ends the stream
        with INVALID_ARGUMENT, after the requests received before it are answered.
        """
        done: queue.Queue[pb.RerankResponse | int] = queue.Queue()
        pending: dict[int, Ticket] = {}  # by id; a finished ticket leaves, so a long stream holds only live ones
        context.add_callback(lambda: [t.cancel() for t in list(pending.values())])

        def answer(query, ticket: Ticket) -> None:
            pending.pop(id(ticket), None)
            try:
                done.put(convert.rerank_response(self.engine.finish_rerank(query, ticket)))
            except Exception as exc:
                done.put(self._rerank_error(query.request_id, exc))

        malformed: list[MalformedMessage] = []

        def read() -> None:
            sent = 0
            try:
                for request in request_iterator:
                    query = convert.rerank_query(request)
                    sent += 1
                    try:
                        check_window_request(query, self.engine.settings)
                        ticket = self.engine.submit_rerank(query, lambda t, q=query: answer(q, t))
                        if not ticket.done:
                            pending[id(ticket)] = ticket
                    except Exception as exc:
                        done.put(self._rerank_error(query.request_id, exc))
            except MalformedMessage as exc:  # stop reading; what came before is still answered
                malformed.append(exc)
            except Exception as exc:  # the client went away mid-stream
                log.debug("stream reader ended: %s", exc)
            finally:
                done.put(sent)

        threading.Thread(target=read, name="rerank-stream-reader", daemon=True).start()
        expected, answered = None, 0
        while expected is None or answered < expected:
            try:
                item = done.get(timeout=1.0)
            except queue.Empty:
                if not context.is_active():
                    return
                continue
            if isinstance(item, int):
                expected = item
                continue
            answered += 1
            yield item
        if malformed:
            raise malformed[0]
