"""The gateway's one map from errors to HTTP status codes, derived from the gRPC one.

An engine exception gets the gRPC status it would get over gRPC (status.status_of), and
that status gets the HTTP code TEI and Cohere's API use for the same situation.

Each route answers in its own API's error shape: vLLM's score and models routes in OpenAI's
(`{"error": {"message", "type", "param", "code"}}`), every other route in one body that TEI's,
Cohere's and Jina's clients all read (`error`, `error_type`, `message`, `detail`).
"""

from __future__ import annotations

from http import HTTPStatus

import grpc
from starlette.responses import JSONResponse

from crossrank.worker.http.schemas import ErrorBody, OpenAIError, OpenAIErrorBody
from crossrank.worker.status import message_of, status_of

# The routes of vLLM's OpenAI-style server; its clients parse OpenAI's error shape there.
OPENAI_PATHS = frozenset({"/score", "/v1/score", "/v1/models"})

# gRPC status -> (HTTP status, TEI-style error_type).
_HTTP: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (422, "Validation"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "Overloaded"),
    grpc.StatusCode.UNAVAILABLE: (503, "Unhealthy"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "Unauthorized"),
    grpc.StatusCode.NOT_FOUND: (404, "NotFound"),
    grpc.StatusCode.FAILED_PRECONDITION: (424, "Backend"),
    grpc.StatusCode.CANCELLED: (499, "Cancelled"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "Timeout"),
    grpc.StatusCode.INTERNAL: (500, "Backend"),
}


def _openai_type(status: int, error_type: str) -> str:
    """OpenAI's error type names, as its SDK's exception classes: 404 NotFoundError, 422 UnprocessableEntityError."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"{error_type}Error"
    return "".join(word.capitalize() for word in phrase.replace("-", " ").split()) + "Error"


def json_error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None,
               path: str = "") -> JSONResponse:
    """The error body of the API that `path` belongs to."""
    if path in OPENAI_PATHS:
        body: ErrorBody | OpenAIErrorBody = OpenAIErrorBody(
            error=OpenAIError(message=message, type=_openai_type(status, error_type), code=status))
    else:
        body = ErrorBody(error=message, error_type=error_type, message=message, detail=message)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_response(code: grpc.StatusCode, message: str, headers: dict[str, str] | None = None,
                   path: str = "") -> JSONResponse:
    status, error_type = _HTTP.get(code, (500, "Backend"))
    return json_error(status, error_type, message, headers, path)


def engine_error_response(exc: BaseException, path: str = "") -> JSONResponse:
    return error_response(status_of(exc), message_of(exc), path=path)


def routing_error_response(status: int, detail: str, method: str, path: str, allowed: str = "") -> JSONResponse:
    """404, 405 and a body that cannot be read at all (400), in the same error body as every other error."""
    if status == 404:
        return json_error(404, "NotFound", f"no route {path}: the routes are POST /v2/rerank, /v1/rerank, "
                          "/rerank, /score and /v1/score, GET /health, /info and /v1/models (see /docs)")
    if status == 405:
        return json_error(405, "MethodNotAllowed", f"{method} is not allowed on {path}; use {allowed}",
                          headers={"Allow": allowed}, path=path)
    if status == 400:
        return json_error(400, "Validation", "request body is not valid JSON in UTF-8", path=path)
    return json_error(status, "Validation", detail, path=path)


def malformed_request_response(errors: list[dict], path: str = "") -> JSONResponse:
    """A body that is not JSON is a 400; JSON of the wrong shape is a 422, as in FastAPI and TEI."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return json_error(400, "Validation", "request body is not valid JSON", path=path)
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
                         for e in errors)
    return error_response(grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {problems}", path=path)
