"""Infinity's and vLLM's POST /rerank: `{model, query, documents, top_n}`, answered with an object.

Infinity answers `document` as a string, and only with `return_documents: true`; vLLM's
request has no `return_documents` and always answers `document` as `{"text": ...}`
(vllm/entrypoints/pooling/score/protocol.py, RerankResult). So the request says which it is:
a body that sends `return_documents` gets Infinity's document (a string, or null when false),
a body without it gets vLLM's object. Infinity's client (infinity_client's ReRankObject)
takes a string or null, vLLM's clients the object.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from crossrank.worker.engine import RerankOutcome, RerankQuery
from crossrank.worker.http.schemas import CohereDocument, Priority, RerankUsage, Text, rerank_usage


class ObjectRerankRequest(BaseModel):
    model: Text | None = None
    query: Text
    documents: list[Text | CohereDocument]
    top_n: int | None = Field(default=None, ge=0)  # vLLM's 0 and Infinity's null both mean all
    return_documents: bool | None = None
    raw_scores: bool = False  # Infinity's
    priority: Priority = 0  # vLLM's


class ObjectRerankResult(BaseModel):
    index: int
    relevance_score: float
    document: str | CohereDocument | None = None


class ObjectRerankResponse(BaseModel):
    object: str = "rerank"
    id: str
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    usage: RerankUsage
    results: list[ObjectRerankResult]


def object_query(req: ObjectRerankRequest, request_id: str) -> RerankQuery:
    texts = [d if isinstance(d, str) else d.text for d in req.documents]
    return RerankQuery(
        query=req.query, documents=texts, top_k=req.top_n or 0, raw_scores=req.raw_scores, request_id=request_id,
        priority=req.priority,
    )


def _document(text: str, return_documents: bool | None) -> str | CohereDocument | None:
    if return_documents is None:  # vLLM's request: its response always carries the document object
        return CohereDocument(text=text)
    return text if return_documents else None


def object_response(outcome: RerankOutcome, model: str, return_documents: bool | None) -> ObjectRerankResponse:
    docs = outcome.query.documents
    return ObjectRerankResponse(
        id=outcome.request_id,
        model=model,
        usage=rerank_usage(outcome),
        results=[
            ObjectRerankResult(
                index=r.index, relevance_score=r.score, document=_document(docs[r.index], return_documents)
            )
            for r in outcome.results
        ],
    )
