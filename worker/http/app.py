"""The HTTP gateway's routes: Cohere's and TEI's rerank APIs over the worker's own engine.

Rerank handlers run the engine call on FastAPI's thread pool, where it waits on the shared
batcher exactly as gRPC threads do, while the event loop watches for the client leaving
(see disconnect.py). No handler runs the model itself.

    POST /v2/rerank, /v1/rerank   Cohere: {model, query, documents, top_n, return_documents}
    POST /rerank                  TEI: {query, texts, raw_scores, return_text, truncate}
    GET  /health                  200 when the model is warm, 503 while loading (open, like gRPC health)
    GET  /info                    what the worker serves and its limits
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

import grpc
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossrank.worker import __version__
from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine
from crossrank.worker.errors import InvalidInputError, TooLongError, WorkerError
from crossrank.worker.http.disconnect import cancel_on_disconnect
from crossrank.worker.http.errors import (
    engine_error_response,
    error_response,
    malformed_request_response,
    routing_error_response,
)
from crossrank.worker.http.gate import Gate
from crossrank.worker.http.outcomes import REQUEST_ID_HEADER, CountAndLog
from crossrank.worker.http.schemas import (
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
from crossrank.worker.settings import WorkerSettings

log = logging.getLogger(__name__)

_ERRORS = {code: {"model": ErrorBody} for code in (401, 422, 429, 503)}


def _request_id(request: Request, response: Response) -> str:
    """The caller's X-Request-Id, or a new one; echoed back so logs on both sides can be matched."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    return request_id


def create_app(engine: Engine, settings: WorkerSettings, drain: Drain) -> FastAPI:
    """The routes, behind the gate (token, body limit) and, outermost, counting and logging every answer."""
    app = FastAPI(title="crossrank", version=__version__,
                  summary="Cross-encoder reranking: Cohere- and TEI-compatible endpoints")
    app.add_middleware(Gate, token=settings.auth_token, max_body_bytes=settings.http_max_body_bytes, drain=drain)
    app.add_middleware(CountAndLog, metrics=engine.metrics)

    @app.exception_handler(WorkerError)
    async def worker_error(_request: Request, exc: WorkerError) -> JSONResponse:
        return engine_error_response(drain.reported(exc))

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return routing_error_response(exc.status_code, str(exc.detail), request.method, request.url.path,
                                      (exc.headers or {}).get("Allow", ""))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return malformed_request_response(list(exc.errors()))

    async def cohere_rerank(body: CohereRerankRequest, request: Request, response: Response, api_version: str
                            ) -> CohereRerankResponse:
        query = cohere_query(body, _request_id(request, response))
        outcome = await cancel_on_disconnect(request, lambda hook: engine.rerank(query, None, hook))
        return cohere_response(outcome, body.return_documents, api_version)

    @app.post("/v2/rerank", response_model=CohereRerankResponse, response_model_exclude_none=True,
              responses=_ERRORS)
    async def cohere_rerank_v2(body: CohereRerankRequest, request: Request, response: Response
                               ) -> CohereRerankResponse:
        return await cohere_rerank(body, request, response, "2")

    @app.post("/v1/rerank", response_model=CohereRerankResponse, response_model_exclude_none=True,
              responses=_ERRORS)
    async def cohere_rerank_v1(body: CohereRerankRequest, request: Request, response: Response
                               ) -> CohereRerankResponse:
        return await cohere_rerank(body, request, response, "1")

    @app.post("/rerank", response_model=list[TeiRank], response_model_exclude_none=True,
              responses=_ERRORS)
    async def tei_rerank(body: TeiRerankRequest, request: Request, response: Response) -> list[TeiRank]:
        query = tei_query(body, _request_id(request, response))
        try:
            outcome = await cancel_on_disconnect(request, lambda hook: engine.rerank(query, None, hook))
        except TooLongError as exc:  # in TEI's words: its clients show and match this message
            raise InvalidInputError(f"Input validation error: `inputs` must have less than {exc.max_length} "
                                    f"tokens. Given: {exc.longest}") from None
        return tei_response(outcome, body.return_text)

    @app.get("/health")
    def health() -> JSONResponse:
        if engine.ready:
            return JSONResponse({"status": "SERVING"})
        reason = f"failed to load: {engine.load_error}" if engine.load_error else "loading"
        return error_response(grpc.StatusCode.UNAVAILABLE, f"worker is {reason}")

    @app.get("/info")
    def info() -> dict[str, object]:
        return dataclasses.asdict(engine.info())

    return app
