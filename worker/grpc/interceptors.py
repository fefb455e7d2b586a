"""Server interceptors (grpc.aio): errors mapped to status codes once, every outcome counted, the bearer token.

Only the Reranker's methods are wrapped; health and reflection are left as they are.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from crossrank.protos import SERVICE_NAME
from crossrank.worker.drain import Drain
from crossrank.worker.grpc.decode import parse, parse_each
from crossrank.worker.metrics import WorkerMetrics
from crossrank.worker.status import message_of, status_of

log = logging.getLogger(__name__)

_RERANKER = f"/{SERVICE_NAME}/"
_CALLER_GONE = (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)

# A handler's behaviour attribute, the factory that builds one, whether requests stream, whether responses do.
_KINDS = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler, False, False),
    ("unary_stream", grpc.unary_stream_rpc_method_handler, False, True),
    ("stream_unary", grpc.stream_unary_rpc_method_handler, True, False),
    ("stream_stream", grpc.stream_stream_rpc_method_handler, True, True),
)


def _rebuild(handler: grpc.RpcMethodHandler, wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]]):
    """A copy of `handler` whose behaviour is wrapped; the bool says whether it streams responses.

    The copy takes raw bytes and parses them inside the wrapped behaviour (see decode.py).
    """
    name, factory, streams_in, streams_out = next(kind for kind in _KINDS if getattr(handler, kind[0]))
    behavior, deserialize = getattr(handler, name), handler.request_deserializer
    if deserialize is not None:
        inner, parsing = behavior, parse_each if streams_in else parse

        def behavior(request, context):
            return inner(parsing(deserialize, request), context)
    return factory(wrap(behavior, streams_out), request_deserializer=None,
                   response_serializer=handler.response_serializer)


def _gone(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """Why a caller went away: its deadline passed, or it cancelled."""
    remaining = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 \
        else grpc.StatusCode.CANCELLED


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns exceptions into status codes with actionable messages and counts every call's outcome.

    Each method's wrapped handler is built once and kept: every call of a herd that is refused passes
    through here, so the path of a refusal is plain try/except, with no handler, closure or context
    manager made per call (docs/benchmarks.md, "What a refusal costs").
    """

    def __init__(self, metrics: WorkerMetrics, drain: Drain):
        self.metrics = metrics
        self.drain = drain
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        path = handler_call_details.method
        if handler is None or not path.startswith(_RERANKER):
            return handler
        kept = self._wrapped.get(path)
        if kept is None or kept[0] is not handler:
            kept = self._wrapped[path] = (handler, _rebuild(handler, self._wrapper(path.rsplit("/", 1)[-1])))
        return kept[1]

    def _wrapper(self, method: str) -> Callable[[Callable[..., Any], bool], Callable[..., Any]]:
        metrics, drain = self.metrics, self.drain

        def counted(code: grpc.StatusCode, started: float) -> None:
            metrics.requests.labels(method, code.name).inc()
            metrics.request_seconds.labels(method, code.name).observe(time.perf_counter() - started)

        def gone(context, started: float) -> None:
            code = _gone(context)
            log.info("%s ended: %s", method, code.name.lower().replace("_", " "))
            counted(code, started)

        async def fail(exc: BaseException, context, started: float) -> None:
            exc = drain.reported(exc)
            code = status_of(exc)
            if code is grpc.StatusCode.CANCELLED:  # the caller is still here: the engine's wait hit the deadline
                code = grpc.StatusCode.DEADLINE_EXCEEDED
            if code is grpc.StatusCode.INTERNAL:
                log.exception("%s failed", method, exc_info=exc)
            elif code in _CALLER_GONE:
                log.info("%s ended: %s", method, code.name.lower().replace("_", " "))
            counted(code, started)
            await context.abort(code, message_of(exc))

        async def ended(exc: BaseException, context, started: float) -> None:
            """A call that did not end OK: the caller gone (re-raised, so gRPC cancels it), or an error's status."""
            if isinstance(exc, asyncio.CancelledError):
                gone(context, started)
                raise exc
            await fail(exc, context, started)

        def wrap(behavior, streams):
            """One call's outcome, counted and timed once: OK, the caller gone, or the error's status."""
            if streams:
                async def stream_behavior(request, context) -> AsyncIterator[Any]:
                    started = time.perf_counter()
                    try:
                        async for response in behavior(request, context):
                            yield response
                    except (asyncio.CancelledError, Exception) as exc:
                        await ended(exc, context, started)
                    counted(grpc.StatusCode.OK, started)
                return stream_behavior

            async def unary_behavior(request, context):
                started = time.perf_counter()
                try:
                    response = await behavior(request, context)
                except (asyncio.CancelledError, Exception) as exc:
                    await ended(exc, context, started)
                counted(grpc.StatusCode.OK, started)
                return response
            return unary_behavior

        return wrap


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without `authorization: Bearer <token>` with UNAUTHENTICATED, and counts them."""

    def __init__(self, token: str, metrics: WorkerMetrics):
        self._expected = f"Bearer {token}".encode()
        self.metrics = metrics

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(_RERANKER):
            return handler  # health and reflection stay open, for load balancers and grpcurl
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = str(metadata.get("authorization", "")).encode()
        if hmac.compare_digest(given, self._expected):
            return handler
        message = "missing bearer token" if not given else "wrong bearer token"
        counted = self.metrics.requests.labels(handler_call_details.method.rsplit("/", 1)[-1], "UNAUTHENTICATED")

        def wrap(_behavior, _streams):
            async def deny(_request, context):
                counted.inc()
                await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                    f"{message}: send metadata authorization: Bearer <token>")
            return deny
        return _rebuild(handler, wrap)
