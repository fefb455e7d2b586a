"""The HTTP gateway's routes: the rerank APIs RAG tools speak, over the worker's own engine.

Rerank handlers run the engine call on FastAPI's thread pool, where it waits on the shared
batcher exactly as gRPC threads do, while the event loop watches for the client leaving
(see disconnect.py). No handler runs the model itself. docs/clients.md lists the clients
each route is tested with.

    POST /v2/rerank             Cohere v2: {model, query, documents, top_n, max_tokens_per_doc}
    POST /v1/rerank             Cohere v1 and Jina (and vLLM's Jina-style route): one response for all
    POST /rerank                TEI {query, texts} -> a list; Infinity/vLLM {query, documents} -> an object
    POST /score, /v1/score      vLLM's score API: {text_1, text_2}
    GET  /health                200 when the model is warm, 503 while loading (open, like gRPC health)
    GET  /info                  what the worker serves and its limits, with TEI's field names too
    GET  /v1/models             the served model name, in OpenAI's list shape
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from fastapi import Body, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossrank.worker import __version__
from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine, RerankOutcome, RerankQuery
from crossrank.worker.errors import InvalidInputError, TooLongError, WorkerError
from crossrank.worker.http.cuts import keep_first_tokens, keep_last_tokens
from crossrank.worker.http.disconnect import cancel_on_disconnect
from crossrank.worker.http.errors import (
    engine_error_response,
    error_response,
    json_error,
    malformed_request_response,
    routing_error_response,
)
from crossrank.worker.http.gate import Gate
from crossrank.worker.http.infinity_vllm import (
    ObjectRerankRequest,
    ObjectRerankResponse,
    object_query,
    object_response,
)
from crossrank.worker.http.models import ModelList, ServedModel, UnknownModelError
from crossrank.worker.http.outcomes import REQUEST_ID_HEADER, CountAndLog
from crossrank.worker.http.schemas import (
    CohereRerankRequest,
    CohereRerankResponse,
    ErrorBody,
    JinaRerankRequest,
    TeiRank,
    TeiRerankRequest,
    cohere_query,
    cohere_response,
    tei_query,
    tei_response,
)
from crossrank.worker.http.score import ScoreRequest, ScoreResponse, score_pairs, score_response
from crossrank.worker.settings import WorkerSettings

log = logging.getLogger(__name__)

_ERRORS = {code: {"model": ErrorBody} for code in (401, 404, 422, 429, 503)}
_RERANK_BODY = Body(openapi_examples={
    "tei": {"summary": "TEI", "value": {"query": "capital of france", "texts": ["paris", "berlin"]}},
    "infinity_vllm": {"summary": "Infinity and vLLM",
                      "value": {"model": "m", "query": "capital of france", "documents": ["paris", "berlin"]}},
})


def _request_id(request: Request, response: Response) -> str:
    """The caller's X-Request-Id, or a new one; echoed back so logs on both sides can be matched."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    return request_id


def _rerank_shape(body: dict[str, Any]) -> TeiRerankRequest | ObjectRerankRequest:
    """`texts` is TEI's body, `documents` Infinity's and vLLM's; one of them, not both."""
    if ("texts" in body) == ("documents" in body):
        said = "both `texts` and" if "texts" in body else "neither `texts` nor"
        raise InvalidInputError(
            f"the body has {said} `documents`: send `texts` for TEI's shape (answered with a list) "
            "or `documents` for Infinity's and vLLM's (answered with an object)")
    shape = TeiRerankRequest if "texts" in body else ObjectRerankRequest
    try:
        return shape.model_validate(body)
    except ValidationError as exc:  # reported as FastAPI reports a body it validated itself
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def create_app(engine: Engine, settings: WorkerSettings, drain: Drain) -> FastAPI:
    """The routes, behind the gate (token, body limit) and, outermost, counting and logging every answer."""
    app = FastAPI(title="crossrank", version=__version__,
                  summary="Cross-encoder reranking: Cohere-, Jina-, TEI-, Infinity- and vLLM-compatible endpoints")
    app.add_middleware(Gate, token=settings.auth_token, max_body_bytes=settings.http_max_body_bytes, drain=drain)
    app.add_middleware(CountAndLog, metrics=engine.metrics)
    served = ServedModel.of(settings)

    @app.exception_handler(WorkerError)
    async def worker_error(request: Request, exc: WorkerError) -> JSONResponse:
        return engine_error_response(drain.reported(exc), request.url.path)

    @app.exception_handler(UnknownModelError)
    async def unknown_model(request: Request, exc: UnknownModelError) -> JSONResponse:
        return json_error(404, "NotFound", str(exc), path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return routing_error_response(exc.status_code, str(exc.detail), request.method, request.url.path,
                                      (exc.headers or {}).get("Allow", ""))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return malformed_request_response(list(exc.errors()), request.url.path)

    async def rerank(request: Request, query: RerankQuery,
                     cut: Callable[[RerankQuery], list[str]] | None = None) -> RerankOutcome:
        """The engine's ranking; `cut` shortens the documents first, answers keep the documents as sent."""
        scored = dataclasses.replace(query, documents=await run_in_threadpool(cut, query)) if cut else query
        outcome = await cancel_on_disconnect(request, engine.submit_rerank(scored))
        return dataclasses.replace(outcome, query=query)

    async def cohere_rerank(body: CohereRerankRequest, request: Request, response: Response, api_version: str,
                            return_documents: bool) -> CohereRerankResponse:
        served.check(body.model)
        tokens = body.max_tokens_per_doc
        outcome = await rerank(request, cohere_query(body, _request_id(request, response)),
                               (lambda q: keep_first_tokens(engine, q.documents, tokens)) if tokens else None)
        return cohere_response(outcome, served.name, return_documents, api_version)

    @app.post("/v2/rerank", response_model=CohereRerankResponse, response_model_exclude_none=True,
              responses=_ERRORS)
    async def cohere_rerank_v2(body: CohereRerankRequest, request: Request, response: Response
                               ) -> CohereRerankResponse:
        return await cohere_rerank(body, request, response, "2", bool(body.return_documents))

    @app.post("/v1/rerank", response_model=CohereRerankResponse, response_model_exclude_none=True,
              responses=_ERRORS)
    async def cohere_jina_rerank_v1(body: JinaRerankRequest, request: Request, response: Response
                                    ) -> CohereRerankResponse:
        # Jina's API returns the documents unless told not to, and vLLM's Jina-style route always does.
        return await cohere_rerank(body, request, response, "1", body.return_documents is not False)

    async def tei_rerank(body: TeiRerankRequest, request: Request, response: Response) -> list[TeiRank]:
        left = body.truncation_direction.lower() == "left" and body.truncate is not False
        try:
            outcome = await rerank(request, tei_query(body, _request_id(request, response)),
                                   (lambda q: keep_last_tokens(engine, q.query, q.documents)) if left else None)
        except TooLongError as exc:  # in TEI's words: its clients show and match this message
            raise InvalidInputError(f"Input validation error: `inputs` must have less than {exc.max_length} "
                                    f"tokens. Given: {exc.longest}") from None
        return tei_response(outcome, body.return_text)

    @app.post("/rerank", response_model=list[TeiRank] | ObjectRerankResponse, response_model_exclude_none=True,
              responses=_ERRORS)
    async def tei_infinity_vllm_rerank(request: Request, response: Response,
                                       body: dict[str, Any] = _RERANK_BODY
                                       ) -> list[TeiRank] | ObjectRerankResponse:
        shaped = _rerank_shape(body)
        if isinstance(shaped, TeiRerankRequest):
            return await tei_rerank(shaped, request, response)
        served.check(shaped.model)
        outcome = await rerank(request, object_query(shaped, _request_id(request, response)))
        return object_response(outcome, served.name, shaped.return_documents)

    @app.post("/score", response_model=ScoreResponse, responses=_ERRORS)
    @app.post("/v1/score", response_model=ScoreResponse, responses=_ERRORS)
    async def vllm_score(body: ScoreRequest, request: Request, response: Response) -> ScoreResponse:
        served.check(body.model)
        pairs = score_pairs(body)
        request_id = _request_id(request, response)
        raw = body.use_activation is False
        outcome = await cancel_on_disconnect(request, engine.submit_score(pairs, raw=raw, request_id=request_id,
                                                                          priority=body.priority))
        return score_response(outcome, served.name, request_id)

    @app.get("/health")
    def health() -> JSONResponse:
        if engine.ready:
            return JSONResponse({"status": "SERVING"})
        reason = f"failed to load: {engine.load_error}" if engine.load_error else "loading"
        return error_response(grpc.StatusCode.UNAVAILABLE, f"worker is {reason}")

    @app.get("/info")
    def info() -> dict[str, object]:
        own = engine.info()
        return {
            **dataclasses.asdict(own),
            # TEI's names for the same facts, which TEI clients (Dify's plugin) read before ranking.
            "model_id": served.name,
            "model_dtype": own.dtype,
            "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}},
            "max_client_batch_size": own.max_documents_per_request,
            "tokenization_workers": own.tokenizer_workers,
            "auto_truncate": True,
        }

    @app.get("/v1/models", response_model=ModelList)
    def models() -> ModelList:
        return served.listing(engine.info().max_input_length)

    return app
