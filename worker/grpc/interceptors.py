"""Server interceptors: errors mapped to status codes once, every outcome counted, and the bearer token."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from crossrank.worker.drain import Drain
from crossrank.worker.grpc.decode import parse, parse_each
from crossrank.worker.metrics import WorkerMetrics
from crossrank.worker.status import message_of, status_of

log = logging.getLogger(__name__)

# Health and reflection stay open so that load balancers and grpcurl work without a token.
_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
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


def _outcome(exc: BaseException, context: grpc.ServicerContext) -> grpc.StatusCode:
    """The status a failed call ends with; a caller that has gone away cancelled it or ran out of time."""
    code = status_of(exc)
    if context.is_active():
        # The caller is still there, so the engine dropped the work itself: its wait reached the deadline.
        return grpc.StatusCode.DEADLINE_EXCEEDED if code is grpc.StatusCode.CANCELLED else code
    remaining = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 \
        else grpc.StatusCode.CANCELLED


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns exceptions into status codes with actionable messages and counts every call's outcome."""

    def __init__(self, metrics: WorkerMetrics, drain: Drain):
        self.metrics = metrics
        self.drain = drain

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        count = self.metrics.requests

        def fail(exc: BaseException, context: grpc.ServicerContext) -> None:
            exc = self.drain.reported(exc)
            code = _outcome(exc, context)
            if code is grpc.StatusCode.INTERNAL:
                log.exception("%s failed", method, exc_info=exc)
            elif code in _CALLER_GONE:  # expected: the client gave up; its queued work was dropped
                log.info("%s ended: %s by the caller", method, code.name.lower().replace("_", " "))
            count.labels(method, code.name).inc()
            context.abort(code, message_of(exc))  # a no-op for a caller that has gone, and logs nothing

        def wrap(behavior, streams):
            if streams:
                def stream_behavior(request, context) -> Iterator[Any]:
                    try:
                        yield from behavior(request, context)
                    except GeneratorExit:  # the caller went away mid-stream; gRPC stopped reading
                        count.labels(method, "CANCELLED").inc()
                        raise
                    except Exception as exc:
                        fail(exc, context)
                    count.labels(method, "OK").inc()
                return stream_behavior

            def unary_behavior(request, context):
                try:
                    response = behavior(request, context)
                except Exception as exc:
                    fail(exc, context)
                count.labels(method, "OK").inc()
                return response
            return unary_behavior

        return _rebuild(handler, wrap)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without `authorization: Bearer <token>` with UNAUTHENTICATED, and counts them."""

    def __init__(self, token: str, metrics: WorkerMetrics):
        self._expected = f"Bearer {token}".encode()
        self.metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(_OPEN_SERVICES):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = str(metadata.get("authorization", "")).encode()
        if hmac.compare_digest(given, self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        message = "missing bearer token" if not given else "wrong bearer token"
        counted = self.metrics.requests.labels(handler_call_details.method.rsplit("/", 1)[-1], "UNAUTHENTICATED")

        def wrap(_behavior, streams):
            def deny(_request, context):
                counted.inc()
                context.abort(grpc.StatusCode.UNAUTHENTICATED,
                              f"{message}: send metadata authorization: Bearer <token>")
            return deny
        return _rebuild(handler, wrap)
