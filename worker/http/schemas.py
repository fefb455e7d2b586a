"""JSON <-> engine types for the HTTP gateway: Cohere's and TEI's rerank shapes, in one place.

Unknown fields are ignored rather than refused, so that newer SDKs sending options this
worker has no use for (Cohere's `priority`, `relevant_spans`) keep working.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from crossrank.worker.engine import LongDocument, RerankOutcome, RerankQuery

# Cohere bills one search unit per query per 100 documents; clients that track usage expect the same count.
_DOCUMENTS_PER_SEARCH_UNIT = 100


def _encodable(text: str) -> str:
    """JSON may escape a lone surrogate (`"\\ud800"`), which no tokenizer or UTF-8 response can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"text has a lone surrogate at character {exc.start}; send valid Unicode") from None
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class CohereDocument(BaseModel):
    text: Text


class CohereRerankRequest(BaseModel):
    """Cohere's v1 and v2 rerank request.

    `model` is accepted and ignored: a worker serves one model. `max_tokens_per_doc` is checked
    but documents are cut at the model's own input limit, as over gRPC.
    """

    model: Text | None = None
    query: Text
    documents: list[Text | CohereDocument]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    max_tokens_per_doc: int | None = Field(default=None, ge=1)
    instruction: Text | None = None  # crossrank's: for LLM rerankers, as over gRPC (docs/models.md)


class CohereRerankResult(BaseModel):
    index: int
    relevance_score: float
    document: CohereDocument | None = None


class CohereBilledUnits(BaseModel):
    search_units: int


class CohereMeta(BaseModel):
    api_version: dict[str, str]
    billed_units: CohereBilledUnits


class CohereRerankResponse(BaseModel):
    id: str
    results: list[CohereRerankResult]
    meta: CohereMeta


class TeiRerankRequest(BaseModel):
    """TEI's /rerank request. Without `truncate`, long inputs are truncated rather than refused."""

    query: Text
    texts: list[Text]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = None
    truncation_direction: Literal["right", "Right"] = "right"
    instruction: Text | None = None  # crossrank's: for LLM rerankers, as over gRPC (docs/models.md)


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


class ErrorBody(BaseModel):
    """TEI's error shape (`error`, `error_type`) plus Cohere's (`message`), so both SDKs show the reason."""

    error: str
    error_type: str
    message: str


def cohere_query(req: CohereRerankRequest, request_id: str) -> RerankQuery:
    texts = [d if isinstance(d, str) else d.text for d in req.documents]
    return RerankQuery(query=req.query, documents=texts, top_k=req.top_n or 0, request_id=request_id,
                       instruction=req.instruction)


def cohere_response(outcome: RerankOutcome, return_documents: bool, api_version: str) -> CohereRerankResponse:
    docs = outcome.query.documents
    return CohereRerankResponse(
        id=outcome.request_id,
        results=[
            CohereRerankResult(index=r.index, relevance_score=r.score,
                               document=CohereDocument(text=docs[r.index]) if return_documents else None)
            for r in outcome.results
        ],
        meta=CohereMeta(api_version={"version": api_version}, billed_units=CohereBilledUnits(
            search_units=max(1, math.ceil(len(docs) / _DOCUMENTS_PER_SEARCH_UNIT)))),
    )


def tei_query(req: TeiRerankRequest, request_id: str) -> RerankQuery:
    # The gRPC rule too: `truncate=false` refuses long inputs, unset or true truncates them.
    mode = LongDocument.ERROR if req.truncate is False else LongDocument.TRUNCATE
    return RerankQuery(query=req.query, documents=list(req.texts), raw_scores=req.raw_scores,
                       long_document=mode, request_id=request_id, instruction=req.instruction)


def tei_response(outcome: RerankOutcome, return_text: bool) -> list[TeiRank]:
    docs = outcome.query.documents
    return [TeiRank(index=r.index, score=r.score, text=docs[r.index] if return_text else None)
            for r in outcome.results]
