"""The engine: validates requests, turns them into batcher tickets, and ranks the results.

It knows nothing of gRPC; the servicer converts protobuf to the types here and back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from crossrank.worker import __version__
from crossrank.worker.batcher import Batcher, Ticket
from crossrank.worker.device import Placement, place
from crossrank.worker.errors import InvalidInputError, NotReadyError, NotServedError
from crossrank.worker.metrics import WorkerMetrics
from crossrank.worker.model_source import check_model_sources
from crossrank.worker.pairs import Encoded, LongDocument, PairEncoder
from crossrank.worker.runtime import CrossEncoderRuntime, EmbedderRuntime
from crossrank.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass
class RerankQuery:
    query: str
    documents: list[str]
    top_k: int = 0
    raw_scores: bool = False
    long_document: LongDocument = LongDocument.TRUNCATE
    window_tokens: int = 0
    window_stride: int = 0
    request_id: str = ""
    return_documents: bool = False


@dataclass
class Usage:
    pairs: int = 0
    tokens: int = 0
    queue_ms: float = 0.0
    inference_ms: float = 0.0

    @classmethod
    def of(cls, ticket: Ticket) -> Usage:
        started = ticket.started or ticket.finished or ticket.submitted
        finished = ticket.finished or started
        return cls(len(ticket.items), ticket.tokens, (started - ticket.submitted) * 1e3, (finished - started) * 1e3)


@dataclass
class Ranked:
    index: int
    score: float


@dataclass
class RerankOutcome:
    request_id: str
    results: list[Ranked]
    usage: Usage
    model: str
    query: RerankQuery = field(repr=False, default_factory=lambda: RerankQuery("", []))


@dataclass
class ScoreOutcome:
    scores: list[float]
    usage: Usage


@dataclass
class EmbedOutcome:
    vectors: np.ndarray
    usage: Usage


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def best_per_source(items: list[Encoded], logits: list[float], n_sources: int) -> np.ndarray:
    """Each document's best score over its windows (a truncated document has one)."""
    best = np.full(n_sources, -np.inf)
    np.maximum.at(best, np.fromiter((e.source for e in items), dtype=np.int64, count=len(items)),
                  np.asarray(logits, dtype=np.float64))
    return best


def _await(ticket: Ticket, timeout: float | None, hook: Callable[[Ticket], None] | None) -> Ticket:
    """Wait for a ticket; whatever is left when the wait ends (deadline, cancel) is dropped."""
    if hook is not None:
        hook(ticket)
    if timeout is not None and timeout >= threading.TIMEOUT_MAX:
        timeout = None  # gRPC reports "no deadline" (grpcurl, Node) as more seconds than a wait can take
    try:
        ticket.wait(timeout)
    finally:
        ticket.cancel()  # a no-op once the ticket is done
    return ticket


class Engine:
    """Loads the models in the background and serves requests once they are warm."""

    def __init__(self, settings: WorkerSettings, metrics: WorkerMetrics | None = None):
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.placement: Placement | None = None
        self.scorer: CrossEncoderRuntime | None = None
        self.embedder: EmbedderRuntime | None = None
        self.encoder: PairEncoder | None = None
        self._score_batcher: Batcher | None = None
        self._embed_batcher: Batcher | None = None
        self._ready = threading.Event()
        self.load_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def load(self) -> None:
        """Load, pin and warm up the models; `ready` turns true only after a warm-up pass."""
        s = self.settings
        t0 = time.perf_counter()
        check_model_sources(s)
        self.placement = place(s.device, s.dtype)
        self.metrics.track_device_memory(self.placement.device)
        self.scorer = CrossEncoderRuntime(s.model, self.placement, s.max_length, s.backend)
        self.encoder = PairEncoder(self.scorer.tokenizer, self.scorer.max_length, s.max_query_share)
        self._score_batcher = self._batcher(self.scorer, s.model)
        if s.serves_embeddings:
            self.embedder = EmbedderRuntime(s.embed_model, self.placement)
            self._embed_batcher = self._batcher(self.embedder, s.embed_model)
        self._warm_up()
        log.info(
            "model ready: model=%s embed_model=%s device=%s (%s) dtype=%s backend=%s max_length=%d in %.1fs",
            s.model, s.embed_model if self.embedder else "-", self.placement.device, self.placement.name,
            self.placement.dtype_name, s.backend, self.scorer.max_length, time.perf_counter() - t0,
        )
        self._ready.set()

    def _batcher(self, runtime: CrossEncoderRuntime | EmbedderRuntime, model: str) -> Batcher:
        s = self.settings
        tokens, pairs = self.batch_limits
        return Batcher(
            runtime,
            max_batch_tokens=max(tokens, runtime.max_length),
            max_batch_pairs=pairs,
            max_queue_pairs=s.max_queue_pairs,
            sort_window=s.sort_window,
            observer=self.metrics.observer(model),
            name=model.rsplit("/", 1)[-1],
        )

    def _warm_up(self) -> None:
        # One short and one full-length batch, so kernels and allocator pools exist before traffic.
        assert self.encoder and self._score_batcher
        for docs in (["warm up"], ["warm " * self.scorer.max_length] * 2):  # type: ignore[union-attr]
            self._score_batcher.submit(Ticket(self.encoder.encode("warm up", docs))).result(timeout=600)
        if self._embed_batcher and self.embedder:
            self._embed_batcher.submit(Ticket(self.embedder.encode(["warm up"]))).result(timeout=600)

    def stop(self) -> None:
        for batcher in (self._score_batcher, self._embed_batcher):
            if batcher is not None:
                batcher.stop()

    def _completed(self, kind: str, model: str, request_id: str, ticket: Ticket) -> Usage:
        """A finished request's usage, recorded once: the queue-time histogram and one log line."""
        usage = Usage.of(ticket)
        self.metrics.request_done(model, usage.queue_ms / 1e3)
        log.debug("%s done", kind, extra={
            "request_id": request_id, "pairs": usage.pairs, "tokens": usage.tokens,
            "queue_ms": round(usage.queue_ms, 2), "inference_ms": round(usage.inference_ms, 2)})
        return usage

    @property
    def batch_limits(self) -> tuple[int, int]:
        on_gpu = self.placement is not None and self.placement.device.type == "cuda"
        return self.settings.batch_limits(on_gpu)

    def _require_ready(self) -> None:
        if not self._ready.is_set():
            if self.load_error is not None:
                raise NotReadyError(f"worker failed to load {self.settings.model}: {self.load_error}")
            raise NotReadyError(f"worker is still loading {self.settings.model}; retry shortly")

    # -- validation ------------------------------------------------------------------------

    def _check_texts(self, what: str, texts: list[str], extra_chars: int = 0) -> None:
        s = self.settings
        if not texts:
            raise InvalidInputError(f"no {what}s: send at least one")
        if len(texts) > s.max_documents_per_request:
            raise InvalidInputError(
                f"{len(texts)} {what}s is more than this worker's limit of {s.max_documents_per_request} "
                "per request; split the request"
            )
        total = sum(map(len, texts)) + extra_chars
        if total > s.max_characters_per_request:
            raise InvalidInputError(
                f"request has {total} characters, more than this worker's limit of "
                f"{s.max_characters_per_request}; split it or shorten the {what}s"
            )

    def _window(self, q: RerankQuery) -> tuple[int, int]:
        window = q.window_tokens or self.settings.window_tokens
        stride = q.window_stride or min(self.settings.window_stride, window)
        if stride > window:
            raise InvalidInputError(f"window_stride {stride} is larger than window_tokens {window}")
        return window, stride

    # -- requests --------------------------------------------------------------------------

    def submit_rerank(self, q: RerankQuery, on_done: Callable[[Ticket], None] | None = None) -> Ticket:
        """Validate and enqueue a rerank; the ticket's outputs are per-input logits."""
        self._require_ready()
        if not q.query.strip():
            raise InvalidInputError("query is empty: send the text to rank the documents against")
        self._check_texts("document", q.documents, len(q.query))
        window, stride = self._window(q)
        assert self.encoder and self._score_batcher
        items = self.encoder.encode(q.query, q.documents, q.long_document, window, stride)
        return self._score_batcher.submit(Ticket(items, on_done=on_done))

    def finish_rerank(self, q: RerankQuery, ticket: Ticket) -> RerankOutcome:
        logits = ticket.result()
        best = best_per_source(ticket.items, logits, len(q.documents))
        scores = best if q.raw_scores else sigmoid(best)
        order = np.argsort(-scores, kind="stable")
        if q.top_k:
            order = order[: q.top_k]
        results = [Ranked(int(i), float(scores[i])) for i in order]
        usage = self._completed("rerank", self.settings.model, q.request_id, ticket)
        return RerankOutcome(q.request_id, results, usage, self.settings.model, q)

    def rerank(self, q: RerankQuery, timeout: float | None = None,
               ticket_hook: Callable[[Ticket], None] | None = None) -> RerankOutcome:
        ticket = _await(self.submit_rerank(q), timeout, ticket_hook)
        return self.finish_rerank(q, ticket)

    def submit_score(self, pairs: list[tuple[str, str]], mode: LongDocument) -> tuple[Ticket, int]:
        self._require_ready()
        if not pairs:
            raise InvalidInputError("no pairs: send at least one (query, document) pair")
        empty = [i for i, (query, _) in enumerate(pairs) if not query.strip()]
        if empty:
            raise InvalidInputError(f"pair(s) {empty[:10]} have an empty query")
        self._check_texts("pair", [query + document for query, document in pairs])
        assert self.encoder and self._score_batcher
        by_query: dict[str, list[int]] = {}
        for i, (query, _) in enumerate(pairs):
            by_query.setdefault(query, []).append(i)
        window, stride = self.settings.window_tokens, self.settings.window_stride
        items: list[Encoded] = []
        for query, indexes in by_query.items():
            for e in self.encoder.encode(query, [pairs[i][1] for i in indexes], mode, window, stride):
                items.append(Encoded(e.features, e.length, indexes[e.source]))
        return self._score_batcher.submit(Ticket(items)), len(pairs)

    def score(self, pairs: list[tuple[str, str]], raw: bool = False, mode: LongDocument = LongDocument.TRUNCATE,
              timeout: float | None = None, ticket_hook: Callable[[Ticket], None] | None = None,
              request_id: str = "") -> ScoreOutcome:
        ticket, n = self.submit_score(pairs, mode)
        _await(ticket, timeout, ticket_hook)
        best = best_per_source(ticket.items, ticket.result(), n)
        usage = self._completed("score", self.settings.model, request_id, ticket)
        return ScoreOutcome((best if raw else sigmoid(best)).tolist(), usage)

    def embed(self, texts: list[str], normalize: bool = False, timeout: float | None = None,
              ticket_hook: Callable[[Ticket], None] | None = None, request_id: str = "") -> EmbedOutcome:
        self._require_ready()
        if self.embedder is None or self._embed_batcher is None:
            raise NotServedError("this worker serves no embedding model; start it with --embed-model")
        self._check_texts("text", texts)
        ticket = _await(self._embed_batcher.submit(Ticket(self.embedder.encode(texts))), timeout, ticket_hook)
        vectors = np.stack(ticket.result()).astype(np.float32)
        if normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return EmbedOutcome(vectors, self._completed("embed", self.settings.embed_model, request_id, ticket))

    def info(self) -> dict[str, object]:
        s = self.settings
        return {
            "model": s.model,
            "embed_model": s.embed_model if s.serves_embeddings else "",
            "device": str(self.placement.device) if self.placement else s.device,
            "dtype": self.placement.dtype_name if self.placement else s.dtype,
            "backend": s.backend,
            "max_input_length": self.scorer.max_length if self.scorer else s.max_length,
            "max_batch_tokens": self.batch_limits[0],
            "max_batch_pairs": self.batch_limits[1],
            "max_queue_pairs": s.max_queue_pairs,
            "max_documents_per_request": s.max_documents_per_request,
            "max_characters_per_request": s.max_characters_per_request,
            "max_message_bytes": s.max_message_bytes,
            "embed_dimensions": self.embedder.dimensions if self.embedder else 0,
            "version": __version__,
        }
