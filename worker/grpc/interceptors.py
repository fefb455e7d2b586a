"""Server interceptors: errors mapped to status codes once, request counting, and the bearer token."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from crossrank.worker.metrics import WorkerMetrics
from crossrank.worker.status import message_of, status_of

log = logging.getLogger(__name__)

# Health and reflection stay open so that load balancers and grpcurl work without a token.
_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _rebuild(handler: grpc.RpcMethodHandler, wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]]):
    """A copy of `handler` whose behaviour is wrapped; the bool says whether it streams responses."""
    if handler.unary_unary:
        factory, behavior, streams = grpc.unary_unary_rpc_method_handler, handler.unary_unary, False
    elif handler.unary_stream:
        factory, behavior, streams = grpc.unary_stream_rpc_method_handler, handler.unary_stream, True
    elif handler.stream_unary:
        factory, behavior, streams = grpc.stream_unary_rpc_method_handler, handler.stream_unary, False
    else:
        factory, behavior, streams = grpc.stream_stream_rpc_method_handler, handler.stream_stream, True
    return factory(wrap(behavior, streams), request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns exceptions into status codes with actionable messages and counts every call."""

    def __init__(self, metrics: WorkerMetrics):
        self.metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        count = self.metrics.requests

        def fail(exc: BaseException, context: grpc.ServicerContext) -> None:
            code = status_of(exc)
            if code is grpc.StatusCode.INTERNAL:
                log.exception("%s failed", method, exc_info=exc)
            count.labels(method, code.name).inc()
            context.abort(code, message_of(exc))

        def wrap(behavior, streams):
            if streams:
                def stream_behavior(request, context) -> Iterator[Any]:
                    try:
                        yield from behavior(request, context)
                    except Exception as exc:
                        if context.is_active():
                            fail(exc, context)
                        raise
                    count.labels(method, "OK").inc()
                return stream_behavior

            def unary_behavior(request, context):
                try:
                    response = behavior(request, context)
                except Exception as exc:
                    if context.is_active():
                        fail(exc, context)
                    raise
                count.labels(method, "OK").inc()
                return response
            return unary_behavior

        return _rebuild(handler, wrap)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without `authorization: Bearer <token>` with UNAUTHENTICATED."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()

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

        def wrap(_behavior, streams):
            def deny(_request, context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED,
                              f"{message}: send metadata authorization: Bearer <token>")
            return deny
        return _rebuild(handler, wrap)
