"""JSON <-> engine types for the HTTP gateway: Cohere's (and Jina's) and TEI's rerank shapes.

Unknown fields are ignored rather than refused, so that newer SDKs sending options this
worker has no use for (Cohere's `relevant_spans`) keep working. `priority` (Cohere's v2 and
vLLM's: lower is handled sooner, 0 the default) is the engine's own.
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
# Cohere documents 0-999 and vLLM any int; the gRPC field is an int32, so any int32 is taken.
Priority = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class CohereDocument(BaseModel):
    text: Text


class CohereRerankRequest(BaseModel):
    """Cohere's v1 and v2 rerank request, which is also Jina's (and vLLM's on /v1/rerank).

    `model` names the model asked for: any name is served unless the worker is started with
    --strict-model-name. `return_documents` left out means what each API does: Cohere's v2
    returns none, Jina's and vLLM's /v1/rerank return them.
    """

    model: Text | None = None
    query: Text
    documents: list[Text | CohereDocument]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool | None = None
    max_tokens_per_doc: int | None = Field(default=None, ge=1)
    instruction: Text | None = None  # crossrank's: for LLM rerankers, as over gRPC (docs/models.md)
    priority: Priority = 0


class JinaRerankRequest(CohereRerankRequest):
    """/v1/rerank's request: Cohere's, but `top_n: 0` means every document, as in vLLM's Jina-style route."""

    top_n: int | None = Field(default=None, ge=0)


class CohereRerankResult(BaseModel):
    index: int
    relevance_score: float
    document: CohereDocument | None = None


class CohereBilledUnits(BaseModel):
    search_units: int


class CohereTokens(BaseModel):
    input_tokens: int


class CohereMeta(BaseModel):
    api_version: dict[str, str]
    billed_units: CohereBilledUnits
    tokens: CohereTokens


class RerankUsage(BaseModel):
    """Jina's and vLLM's `total_tokens`, Infinity's `prompt_tokens`: the tokens the model really scored."""

    total_tokens: int
    prompt_tokens: int


class CohereRerankResponse(BaseModel):
    """Cohere's response (`id`, `results`, `meta`) with Jina's `model` and `usage`: one body for both."""

    id: str
    model: str
    results: list[CohereRerankResult]
    usage: RerankUsage
    meta: CohereMeta


class TeiRerankRequest(BaseModel):
    """TEI's /rerank request. Without `truncate`, long inputs are truncated rather than refused."""

    query: Text
    texts: list[Text]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = None
    # Haystack's TEI ranker sends "Left" or "Right"; left cuts the start of a long text, not its end.
    truncation_direction: Literal["right", "Right", "left", "Left"] = "right"
    instruction: Text | None = None  # crossrank's: for LLM rerankers, as over gRPC (docs/models.md)


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


class ErrorBody(BaseModel):
    """TEI's error shape (`error`, `error_type`), Cohere's (`message`) and Jina's (`detail`), so each
    client shows the reason."""

    error: str
    error_type: str
    message: str
    detail: str


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape, which vLLM answers on its score and models routes."""

    error: OpenAIError


def cohere_query(req: CohereRerankRequest, request_id: str) -> RerankQuery:
    texts = [d if isinstance(d, str) else d.text for d in req.documents]
    return RerankQuery(query=req.query, documents=texts, top_k=req.top_n or 0, request_id=request_id,
                       instruction=req.instruction, priority=req.priority)


def rerank_usage(outcome: RerankOutcome) -> RerankUsage:
    return RerankUsage(total_tokens=outcome.usage.tokens, prompt_tokens=outcome.usage.tokens)


def cohere_response(outcome: RerankOutcome, model: str, return_documents: bool, api_version: str
                    ) -> CohereRerankResponse:
    docs = outcome.query.documents
    return CohereRerankResponse(
        id=outcome.request_id,
        model=model,
        results=[
            CohereRerankResult(index=r.index, relevance_score=r.score,
                               document=CohereDocument(text=docs[r.index]) if return_documents else None)
            for r in outcome.results
        ],
        usage=rerank_usage(outcome),
        meta=CohereMeta(api_version={"version": api_version}, billed_units=CohereBilledUnits(
            search_units=max(1, math.ceil(len(docs) / _DOCUMENTS_PER_SEARCH_UNIT))),
            tokens=CohereTokens(input_tokens=outcome.usage.tokens)),
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
