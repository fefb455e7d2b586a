"""protobuf <-> engine types, in one place; the servicer and the engine never see the other side."""

from __future__ import annotations

import dataclasses

import numpy as np

from crossrank.common.info import WorkerInfo
from crossrank.protos import pb
from crossrank.worker.engine import (
    EmbedOutcome,
    LongDocument,
    RerankOutcome,
    RerankQuery,
    ScoreOutcome,
    Usage,
)

_LONG_DOCUMENT = {
    pb.LONG_DOCUMENT_TRUNCATE: LongDocument.TRUNCATE,
    pb.LONG_DOCUMENT_WINDOW: LongDocument.WINDOW,
    pb.LONG_DOCUMENT_ERROR: LongDocument.ERROR,
}


def long_document(mode: int, truncate: bool | None) -> LongDocument:
    """The explicit mode wins; else TEI's `truncate=false` means refuse; else truncate."""
    if mode in _LONG_DOCUMENT:
        return _LONG_DOCUMENT[mode]
    if truncate is False:
        return LongDocument.ERROR
    return LongDocument.TRUNCATE


def rerank_query(req: pb.RerankRequest) -> RerankQuery:
    truncate = req.truncate if req.HasField("truncate") else None
    return RerankQuery(
        query=req.query,
        documents=list(req.documents),
        top_k=req.top_k,
        raw_scores=req.raw_scores,
        long_document=long_document(req.long_document, truncate),
        window_tokens=req.window_tokens,
        window_stride=req.window_stride,
        request_id=req.request_id,
        return_documents=req.return_documents,
        instruction=instruction(req),
        priority=req.priority,
    )


def instruction(req: pb.RerankRequest | pb.ScoreRequest) -> str | None:
    """The request's instruction; None when it sent none (the model's default prompt applies)."""
    return req.instruction if req.HasField("instruction") else None


def usage_to_proto(usage: Usage) -> pb.Usage:
    return pb.Usage(pairs=usage.pairs, tokens=usage.tokens, queue_ms=usage.queue_ms,
                    inference_ms=usage.inference_ms)


def rerank_response(outcome: RerankOutcome) -> pb.RerankResponse:
    docs = outcome.query.documents if outcome.query.return_documents else None
    return pb.RerankResponse(
        request_id=outcome.request_id,
        model=outcome.model,
        usage=usage_to_proto(outcome.usage),
        results=[
            pb.RankedDocument(index=r.index, score=r.score, document=docs[r.index] if docs else "")
            for r in outcome.results
        ],
    )


def rerank_error(request_id: str, code: int, message: str) -> pb.RerankResponse:
    return pb.RerankResponse(request_id=request_id, error=pb.Error(code=code, message=message))


def score_pairs(req: pb.ScoreRequest) -> list[tuple[str, str]]:
    return [(p.query, p.document) for p in req.pairs]


def score_mode(req: pb.ScoreRequest) -> LongDocument:
    return long_document(req.long_document, req.truncate if req.HasField("truncate") else None)


def score_response(request_id: str, model: str, outcome: ScoreOutcome) -> pb.ScoreResponse:
    return pb.ScoreResponse(request_id=request_id, model=model, scores=outcome.scores,
                            usage=usage_to_proto(outcome.usage))


def embed_response(request_id: str, model: str, outcome: EmbedOutcome) -> pb.EmbedResponse:
    vectors: np.ndarray = outcome.vectors
    return pb.EmbedResponse(
        request_id=request_id,
        model=model,
        dimensions=int(vectors.shape[1]) if vectors.ndim == 2 else 0,
        embeddings=[pb.Embedding(values=row) for row in vectors.tolist()],
        usage=usage_to_proto(outcome.usage),
    )


_LOADING = ("state", "loading_seconds", "load_error")  # the servicer's to say, not the engine's


def info_response(info: WorkerInfo, state: int = pb.WORKER_STATE_READY, loading_seconds: float = 0.0,
                  load_error: str = "") -> pb.InfoResponse:
    fields = pb.InfoResponse.DESCRIPTOR.fields_by_name
    own = {k: v for k, v in dataclasses.asdict(info).items() if k in fields and k not in _LOADING}
    return pb.InfoResponse(**own, state=state,
                           loading_seconds=loading_seconds, load_error=load_error)
