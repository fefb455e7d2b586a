"""The HTTP gateway's routes: Cohere's and TEI's rerank APIs over the worker's own engine.

Handlers are plain `def`s: FastAPI runs them on its thread pool, where they wait on the
shared batcher exactly as gRPC threads do, and never run the model themselves.

    POST /v2/rerank, /v1/rerank   Cohere: {model, query, documents, top_n, return_documents}
    POST /rerank                  TEI: {query, texts, raw_scores, return_text, truncate}
    GET  /health                  200 when the model is warm, 503 while loading (open, like gRPC health)
    GET  /info                    what the worker serves and its limits
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import time
import uuid

import grpc
from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from crossrank.worker import __version__
from crossrank.worker.engine import Engine
from crossrank.worker.errors import WorkerError
from crossrank.worker.http_errors import engine_error_response, error_response, malformed_request_response
from crossrank.worker.http_schemas import (
    CohereRerankRequest,
    CohereRerankResponse,
    ErrorBody,
    TeiRank,
    TeiRerankRequest,
    cohere_query,
    cohere_response,
    tei_query,
    tei_response,
)

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_ERRORS = {code: {"model": ErrorBody} for code in (401, 422, 429, 503)}


class _Unauthenticated(Exception):
    pass


def _bearer_check(token: str):
    """A dependency that wants `Authorization: Bearer <token>`, as Cohere's SDK sends its api_key."""
    expected = f"Bearer {token}".encode()

    def check(authorization: str = Header(default="")) -> None:
        given = authorization.encode()
        if not hmac.compare_digest(given, expected):
            raise _Unauthenticated("missing bearer token" if not given else "wrong bearer token")

    return check


def _request_id(request: Request, response: Response) -> str:
    """The caller's X-Request-Id, or a new one; echoed back so logs on both sides can be matched."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    return request_id


def create_app(engine: Engine, token: str = "") -> FastAPI:
    app = FastAPI(title="crossrank", version=__version__,
                  summary="Cross-encoder reranking: Cohere- and TEI-compatible endpoints")
    guarded = [Depends(_bearer_check(token))] if token else []
    metrics = engine.metrics

    @app.exception_handler(WorkerError)
    async def worker_error(_request: Request, exc: WorkerError) -> JSONResponse:
        return engine_error_response(exc)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("http request failed", exc_info=exc)
        return engine_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return malformed_request_response(list(exc.errors()))

    @app.exception_handler(_Unauthenticated)
    async def unauthenticated(_request: Request, exc: _Unauthenticated) -> JSONResponse:
        return error_response(grpc.StatusCode.UNAUTHENTICATED,
                              f"{exc}: send the header Authorization: Bearer <token>",
                              headers={"WWW-Authenticate": "Bearer"})

    @app.middleware("http")
    async def count_and_log(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")  # a route's template, so random paths add no labels
        metrics.http_requests.labels(path, str(response.status_code)).inc()
        log.debug("http %s %s", request.method, path, extra={
            "request_id": response.headers.get(REQUEST_ID_HEADER, ""), "status": response.status_code,
            "ms": round((time.perf_counter() - start) * 1e3, 2)})
        return response

    @app.post("/v2/rerank", dependencies=guarded, response_model=CohereRerankResponse,
              response_model_exclude_none=True, responses=_ERRORS)
    @app.post("/v1/rerank", dependencies=guarded, response_model=CohereRerankResponse,
              response_model_exclude_none=True, responses=_ERRORS)
    def cohere_rerank(body: CohereRerankRequest, request: Request, response: Response
                      ) -> CohereRerankResponse:
        outcome = engine.rerank(cohere_query(body, _request_id(request, response)))
        return cohere_response(outcome, body.return_documents)

    @app.post("/rerank", dependencies=guarded, response_model=list[TeiRank], response_model_exclude_none=True,
              responses=_ERRORS)
    def tei_rerank(body: TeiRerankRequest, request: Request, response: Response) -> list[TeiRank]:
        outcome = engine.rerank(tei_query(body, _request_id(request, response)))
        return tei_response(outcome, body.return_text)

    @app.get("/health")
    def health() -> JSONResponse:
        if engine.ready:
            return JSONResponse({"status": "SERVING"})
        reason = f"failed to load: {engine.load_error}" if engine.load_error else "loading"
        return error_response(grpc.StatusCode.UNAVAILABLE, f"worker is {reason}")

    @app.get("/info", dependencies=guarded)
    def info() -> dict[str, object]:
        return dataclasses.asdict(engine.info())

    return app
