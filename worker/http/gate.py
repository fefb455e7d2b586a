"""What every HTTP request passes before routing: a draining worker's 503, the bearer token, the body limit.

A pure ASGI layer, outside FastAPI, so that a request without the token is refused before a
byte of its body is read, and a body over the limit is refused (413) before it is parsed or
held whole. The body it lets through is handed on from memory; later reads of `receive`
go to the connection, so the routes still see a client that disconnects.
"""

from __future__ import annotations

import hmac

import grpc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crossrank.worker.drain import SHUTTING_DOWN, Drain
from crossrank.worker.http.errors import error_response, json_error

# Load balancers probe health without a token, as gRPC's health service stays open.
OPEN_PATHS = frozenset({"/health"})


class Gate:
    def __init__(self, app: ASGIApp, token: str, max_body_bytes: int, drain: Drain):
        self.app = app
        self.drain = drain
        self._expected = f"Bearer {token}".encode() if token else b""
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.started:
            response = error_response(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN,
                                      headers={"Connection": "close", "Retry-After": "1"}, path=scope["path"])
            await response(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self._expected and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                said = "missing bearer token" if not given else "wrong bearer token"
                response = error_response(grpc.StatusCode.UNAUTHENTICATED,
                                          f"{said}: send the header Authorization: Bearer <token>",
                                          headers={"WWW-Authenticate": "Bearer"}, path=scope["path"])
                await response(scope, receive, send)
                return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(int(declared), scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._too_large(len(body), scope, receive, send, at_least=True)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, size: int, scope: Scope, receive: Receive, send: Send, at_least: bool = False
                         ) -> None:
        said = f"{'more than ' if at_least else ''}{size} bytes"
        response = json_error(413, "Validation", f"request body is {said}, over this worker's limit of "
                              f"{self.max_body_bytes}; split the request or raise --http-max-body-bytes",
                              headers={"Connection": "close"}, path=scope["path"])
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
