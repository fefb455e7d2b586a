"""The gateway's outermost layer: every answer counted and logged, and no exception past it.

Starlette answers an unhandled exception with a 500 and then re-raises it to the server,
which logs a second traceback and may drop the keep-alive connection. Here it is logged
once and answered with the documented error body, and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crossrank.worker.drain import SHUTTING_DOWN
from crossrank.worker.http.errors import engine_error_response, error_response
from crossrank.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"


class CountAndLog:
    def __init__(self, app: ASGIApp, metrics: WorkerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        answer: dict[str, object] = {"status": 0, "request_id": ""}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                headers = dict(message.get("headers", ()))
                answer["request_id"] = headers.get(REQUEST_ID_HEADER.lower().encode(), b"").decode()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:  # uvicorn's graceful shutdown ran out: answer 503, not its plain 500
            if not answer["status"]:
                await error_response(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN, path=scope["path"])(
                    scope, receive, sending)
        except Exception as exc:
            log.error("http %s %s failed", scope["method"], scope["path"], exc_info=exc)
            if not answer["status"]:
                await engine_error_response(exc, scope["path"])(scope, receive, sending)
        route = scope.get("route")
        path = getattr(route, "path", "unmatched")  # a route's template, so random paths add no labels
        self.metrics.http_requests.labels(path, str(answer["status"])).inc()
        log.debug("http %s %s", scope["method"], path, extra={
            "request_id": answer["request_id"], "status": answer["status"],
            "ms": round((time.perf_counter() - start) * 1e3, 2)})
