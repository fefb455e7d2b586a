"""The engine: admits requests, tokenizes them on a pool, queues them for the scheduler, ranks the results.

A request goes admit (on the caller's thread: validation, queue and deadline checks) ->
tokenize (a pool of `tokenizer_workers` threads, in parallel, without the GIL) -> schedule and
collate -> forward -> post (the scheduler's threads, `batcher.py`) -> ranking (sigmoid, sort,
top-k) on the thread that reads the result. It knows nothing of gRPC or HTTP: the transports
convert to and from the types in `types.py`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from crossrank.common.info import WorkerInfo
from crossrank.worker import __version__
from crossrank.worker.cpu_threads import stand_back
from crossrank.worker.engine.admission import (
    START_UP_BATCHES,
    Admission,
    start_up_length,
    start_up_seconds,
)
from crossrank.worker.engine.batcher import Batcher, Ticket
from crossrank.worker.engine.cpu_streams import CpuStreams
from crossrank.worker.engine.device import Placement, place
from crossrank.worker.engine.request import Request
from crossrank.worker.engine.runtime import CrossEncoderRuntime, EmbedderRuntime
from crossrank.worker.engine.stage_metrics import StageMetrics
from crossrank.worker.engine.tokenizer import PairTokenizer, Tokens, keep_suffix
from crossrank.worker.engine.tokenizer_pool import TokenizerPool
from crossrank.worker.engine.types import (
    EmbedOutcome,
    LongDocument,
    Ranked,
    RerankOutcome,
    RerankQuery,
    ScoreOutcome,
    Usage,
)
from crossrank.worker.errors import NotReadyError, NotServedError, OverloadedError
from crossrank.worker.gc_heap import freeze_startup_heap, thaw_heap
from crossrank.worker.metrics import WorkerMetrics
from crossrank.worker.model_source import check_model_sources
from crossrank.worker.settings import WorkerSettings

log = logging.getLogger("crossrank.worker.engine")


class CoreLink(Protocol):
    """A frontend's link to the engine core (`crossrank.worker.engine_core.client.CoreClient`)."""

    @property
    def alive(self) -> bool: ...

    def wait_ready(self, timeout: float | None = None) -> dict[str, Any]: ...

    def queue(self, kind: str) -> Any: ...


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def best_per_source(sources: np.ndarray, logits: np.ndarray, n_sources: int) -> np.ndarray:
    """Each document's best score over its windows (a truncated document has one)."""
    best = np.full(n_sources, -np.inf)
    np.maximum.at(best, sources, np.asarray(logits, dtype=np.float64))
    return best


def usage_of(ticket: Ticket) -> Usage:
    started = ticket.started or ticket.finished or ticket.submitted
    finished = ticket.finished or started
    tokens = ticket.tokens.total if ticket.tokens is not None else 0
    return Usage(ticket.size, tokens, (started - ticket.submitted) * 1e3, (finished - started) * 1e3)


def default_tokenizer_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) - 1)


def _deadline(timeout: float | None) -> float | None:
    # gRPC reports "no deadline" (grpcurl, Node) as more seconds than a wait can take.
    if timeout is None or timeout >= threading.TIMEOUT_MAX or not math.isfinite(timeout):
        return None
    return time.perf_counter() + timeout


class Engine:
    """Loads the models in the background and serves requests once they are warm."""

    def __init__(self, settings: WorkerSettings, metrics: WorkerMetrics | None = None, core: CoreLink | None = None):
        self.settings = settings
        # A frontend process's link to the engine core (`crossrank serve --frontends N`): the models and
        # batchers live there, and this engine tokenizes, admits and ranks. None: all of it runs here.
        self.core = core
        self.metrics = metrics or WorkerMetrics()
        self.stage_metrics = StageMetrics(self.metrics.registry)
        self.placement: Placement | None = None
        self.scorer: CrossEncoderRuntime | None = None
        self.embedder: EmbedderRuntime | None = None
        self.pair_tokenizer: PairTokenizer | None = None
        self.tokenizer_workers = settings.tokenizer_workers or default_tokenizer_workers()
        self._score_batcher: Batcher | None = None
        self._embed_batcher: Batcher | None = None
        self._pool: TokenizerPool | None = None
        self._tokenizing: Counter[int] = Counter()  # inputs admitted and not yet queued for a batch, by priority
        self._admit_lock = threading.Lock()
        self.admission = Admission(settings)
        self._ready = threading.Event()
        self.load_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._ready.is_set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and (self.core is None or self.core.alive)

    def load(self) -> None:
        """Load, pin and warm up the models; `ready` turns true only after a warm-up pass."""
        s = self.settings
        t0 = time.perf_counter()
        check_model_sources(s)
        if self.core is None:
            self._load_models()
        else:
            self._link_core(self.core)
        self.pair_tokenizer = self.scorer.pair_tokenizer  # type: ignore[union-attr]
        self.stage_metrics.track_tokenize(lambda: self._tokenizing_at(None))
        self._start_tokenizer_threads()
        self._warm_up()
        log.info(
            "model ready: model=%s embed_model=%s device=%s (%s) dtype=%s (%s) backend=%s graph=%s max_length=%d "
            "tokenizer_workers=%d forward_streams=%d in %.1fs",
            s.model, s.embed_model if self.embedder else "-", self.placement.device, self.placement.name,
            self.placement.dtype_name, self.placement.dtype_reason, self.placement.backend,
            self.scorer.graph or "-", self.scorer.max_length, self.tokenizer_workers, self._forward_streams(),
            time.perf_counter() - t0,
        )
        freeze_startup_heap()
        self._ready.set()

    def _load_models(self) -> None:
        """Load the models here, each behind a batcher of its own."""
        s = self.settings
        self.placement = place(s.device, s.dtype, s.backend)
        self._stand_back_on_a_cpu()
        self.metrics.track_device_memory(self.placement.device)
        self.scorer = CrossEncoderRuntime(s.model, self.placement, s.max_length, self.placement.backend,
                                          s.max_query_share, s.onnx_cache, default_prompt=s.default_prompt,
                                          openvino_cache=s.openvino_cache, openvino_hint=s.openvino_hint,
                                          torch_graph=s.torch_graph)
        self._pool = TokenizerPool(self.tokenizer_workers)
        self._score_batcher = self._batcher(self.scorer, s.model)
        if s.serves_embeddings:
            self.embedder = EmbedderRuntime(s.embed_model, self.placement)
            self._embed_batcher = self._batcher(self.embedder, s.embed_model)

    def _link_core(self, core: CoreLink) -> None:
        """A frontend: the core holds the models; here only their tokenizers, and the core's queues."""
        s = self.settings
        info = core.wait_ready()
        self.placement = Placement.of_info(info)
        self._stand_back_on_a_cpu()
        self.scorer = CrossEncoderRuntime(s.model, self.placement, s.max_length, "torch", s.max_query_share,
                                          default_prompt=s.default_prompt, weights=False)
        self._pool = TokenizerPool(self.tokenizer_workers)
        self._score_batcher = self._track(core.queue("score"), s.model)  # type: ignore[assignment]
        if s.serves_embeddings:
            self.embedder = EmbedderRuntime(s.embed_model, self.placement, weights=False)
            self._embed_batcher = self._track(core.queue("embed"), s.embed_model)  # type: ignore[assignment]

    def _stand_back_on_a_cpu(self) -> None:
        """From here on this (the loading) thread, and the threads it starts, tokenize and run the model: the
        tokenizer pool, the batchers' threads, and the Rust tokenizer's and OpenMP's pools started from them.
        On a CPU they stand back for the request path (`cpu_threads.stand_back`); a GPU's feed does not."""
        if self.placement.device.type != "cuda":
            stand_back(self.settings.compute_niceness)

    def queue(self, kind: str) -> Batcher:
        """The batcher of "score" or "embed" (where the engine core puts frontends' requests, too)."""
        batcher = self.queues().get(kind)
        if batcher is None and not self.loaded:  # its batcher may come yet (in an engine core, say)
            raise NotReadyError(f"worker is still loading {self.settings.model}; retry shortly")
        if batcher is None:  # only the embedding model is optional
            raise NotServedError("this worker serves no embedding model; start it with --embed-model")
        return batcher

    def queues(self) -> dict[str, Batcher]:
        """The batchers this worker has, by kind."""
        return {kind: b for kind, b in (("score", self._score_batcher), ("embed", self._embed_batcher)) if b}

    def _batcher(self, runtime: CrossEncoderRuntime | EmbedderRuntime, model: str) -> Batcher:
        s = self.settings
        tokens, pairs = self.batch_limits
        batcher = Batcher(
            runtime,
            max_batch_tokens=max(tokens, runtime.max_length),
            max_batch_pairs=pairs,
            sort_window=s.sort_window,
            ahead=2 if self.placement is not None and self.placement.device.type == "cuda" else 1,
            observer=self.metrics.observer(model),
            stages=self.stage_metrics.observer(model),
            name=model.rsplit("/", 1)[-1],
            streams=self._cpu_streams(runtime),
        )
        return self._track(batcher, model)

    def _graph_reason(self) -> str:
        """How torch runs the scorer (`CrossEncoderRuntime._graph`), for Info's dtype_reason; a frontend's
        comes with the core's placement."""
        graph = self.scorer.graph if self.scorer else ""
        return f"; graph {graph}" if graph else ""

    def _forward_streams(self) -> int:
        """Forward passes the scorer's batcher runs side by side (a frontend's: none of its own)."""
        streams = getattr(self._score_batcher, "streams", None)
        return streams.count if streams else (0 if self.core is not None else 1)

    def _cpu_streams(self, runtime: CrossEncoderRuntime | EmbedderRuntime) -> CpuStreams | None:
        """Forward passes side by side where torch runs on the CPU (`cpu_streams.py`); elsewhere one thread
        launches every pass: a GPU queues them on its stream, ONNX Runtime and OpenVINO thread their own."""
        on_torch = getattr(runtime, "backend", "torch") == "torch"  # the embedder always is
        if self.placement is None or self.placement.device.type != "cpu" or not on_torch:
            return None
        # Tokenizing is the worker's work too: a pass alone in the batcher leaves those cores to it.
        return CpuStreams(self.settings.cpu_streams, busy_elsewhere=lambda: self._tokenizing_at(None) > 0)

    def _track(self, batcher: Batcher, model: str) -> Batcher:
        # Read when scraped, so the gauge is true at every moment (a cancelled request leaves it at once).
        self.metrics.queue_depth.labels(model).set_function(batcher.pending_pairs)
        self.metrics.track_priority_depth(model, batcher.pending_by_priority)
        self.stage_metrics.track_batcher(model, batcher)
        return batcher

    def _start_tokenizer_threads(self) -> None:
        """Every tokenizer thread starts, with its own tokenizer copies, before the worker is ready."""
        assert self._pool and self.pair_tokenizer
        tokenizers = [self.pair_tokenizer] + ([self.embedder.pair_tokenizer] if self.embedder else [])
        self._pool.start([t.prepare_thread for t in tokenizers])

    def _warm_up(self) -> None:
        # One short and one full-length batch, so kernels and allocator pools exist before traffic; then
        # a few full batches, whose rate admission starts from (never none: the first burst is priced too).
        assert self.scorer and self._score_batcher and self.pair_tokenizer
        if self.core is not None:  # the core has warmed its models; one request checks the way there and back
            self._round_trip_to_core()
            return
        for docs in (["warm up"], ["warm " * self.scorer.max_length] * 2):
            self._enqueue_rerank(RerankQuery("warm up", docs), None).result(timeout=600)
        scorer = self.pair_tokenizer
        self._start_up_rate(
            self._score_batcher, self.scorer.max_length,
            lambda n, words: scorer.encode("warm up", ["warm " * words] * n))
        if self._embed_batcher and self.embedder:
            embedder = self.embedder.pair_tokenizer
            self._enqueue(self._embed_batcher, 1, None, 0,
                          lambda: embedder.encode_texts(["warm up"])).result(timeout=600)
            self._start_up_rate(
                self._embed_batcher, self.embedder.max_length,
                lambda n, words: embedder.encode_texts(["warm " * words] * n))

    def _start_up_rate(self, batcher: Batcher, max_length: int, encode: Callable[[int, int], Tokens]) -> None:
        """The rate the deadline rule starts from (`admission.start_up_seconds`): START_UP_BATCHES
        batches full by both limits, of inputs cut to `start_up_length` tokens."""
        length = start_up_length(max_length, batcher.max_batch_tokens, batcher.max_batch_pairs)
        n = START_UP_BATCHES * batcher.max_batch_pairs

        def cut() -> Tokens:  # each input its first length - 1 tokens and its own last one (the end mark)
            tokens = encode(n, length)
            return keep_suffix(tokens, length, tokens.ids[tokens.offsets[1:2] - 1])

        ticket = self._enqueue(batcher, n, None, 0, cut)
        ticket.result(timeout=600)
        assert ticket.started is not None and ticket.finished is not None
        batcher.start_rate(start_up_seconds(ticket.finished - ticket.started), n)

    def _round_trip_to_core(self, within: float = 600.0) -> None:
        """One request to the engine core and back. A core that dies meanwhile is started again by `serve`:
        this frontend waits for the new one and tries again, rather than fail its own start (which would end
        `serve`, as a model that cannot load does)."""
        assert self.core is not None
        deadline = time.monotonic() + within
        while True:
            try:
                self._enqueue_rerank(RerankQuery("warm up", ["warm up"]), None).result(timeout=within)
                return
            except NotReadyError:
                if time.monotonic() >= deadline:
                    raise
                log.warning("the engine core stopped while this frontend started; waiting for the next one")
                while not self.core.alive and time.monotonic() < deadline:
                    time.sleep(0.1)

    def stop(self) -> None:
        for batcher in (self._score_batcher, self._embed_batcher):
            if batcher is not None:
                batcher.stop()
        if self._pool is not None:
            self._pool.shutdown()
        thaw_heap()

    def _completed(self, kind: str, model: str, request_id: str, ticket: Ticket) -> Usage:
        """A finished request's usage, recorded once: the queue-time histograms and one log line."""
        usage = usage_of(ticket)
        self.metrics.request_done(model, usage.queue_ms / 1e3, ticket.priority)
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

    # -- admission -------------------------------------------------------------------------

    def admit(self, pairs: int, timeout: float | None = None, embed: bool = False, priority: int = 0) -> None:
        """Refuse at once (OverloadedError, RESOURCE_EXHAUSTED) what cannot be served in time.

        `pairs` inputs (documents, pairs or texts) would overflow the queue, or the estimated wait
        for them, at the rate measured so far (warm-up's until traffic is measured), exceeds
        `admission.ADMIT_SHARE` of `timeout` seconds (the time the request's deadline leaves).
        Both count only the work at `priority` or more urgent: less urgent work never delays it.
        """
        self._require_ready()
        # One read of the queue (under its lock) for every rule below.
        state = self.queue("embed" if embed else "score").state()
        tokenizing = self._tokenizing_at(priority)
        queued = tokenizing + state.pending_pairs(priority)
        self.admission.check_room(queued, pairs)
        self.admission.check_total(self._tokenizing_at(None) + state.pending_pairs(), pairs)
        self.admission.check_wait(state.estimated_wait(tokenizing + pairs, priority), queued, pairs,
                                  timeout if _deadline(timeout) is not None else None,
                                  alone=queued + state.inflight == 0)

    def estimated_wait(self, pairs: int = 0, embed: bool = False, priority: int | None = None) -> float | None:
        """Seconds until `pairs` more inputs at `priority` (None: behind all work) would be scored at the
        measured rate, counting those still in the tokenizers; None only before warm-up."""
        batcher = self._embed_batcher if embed else self._score_batcher
        if batcher is None:
            return None
        return batcher.estimated_wait(self._tokenizing_at(priority) + pairs, priority)

    def _tokenizing_at(self, priority: int | None) -> int:
        """Inputs in the tokenizers at `priority` or more urgent (None: all); under the lock that
        `_enqueue` and `_release` change the counts under, so no thread reads a dict in flux."""
        with self._admit_lock:
            return sum(n for p, n in self._tokenizing.items() if priority is None or p <= priority)

    # -- the tokenize stage ----------------------------------------------------------------

    def _enqueue(self, batcher: Batcher, pairs: int, deadline: float | None, priority: int,
                 encode: Callable[[], Tokens]) -> Ticket:
        """A ticket whose inputs a tokenizer thread will encode and queue for the batcher."""
        assert self._pool is not None
        ticket = Ticket(deadline=deadline, priority=priority)
        with self._admit_lock:
            self._tokenizing[priority] += pairs
        try:
            self._pool.submit(priority, lambda: self._tokenize(batcher, ticket, pairs, encode))
        except RuntimeError:  # the pool has shut down
            self._release(ticket, pairs)
            raise OverloadedError("worker is shutting down") from None
        return ticket

    def _release(self, ticket: Ticket, pairs: int) -> None:
        with self._admit_lock:
            self._tokenizing[ticket.priority] -= pairs
            if not self._tokenizing[ticket.priority]:  # keys only for priorities in the tokenizers now
                del self._tokenizing[ticket.priority]

    def _tokenize(self, batcher: Batcher, ticket: Ticket, pairs: int, encode: Callable[[], Tokens]) -> None:
        try:
            if ticket.done:  # cancelled while it waited for a tokenizer
                batcher.observer.dropped(pairs)
                return
            started = time.perf_counter()
            ticket.tokens = encode()
            self.stage_metrics.busy_of("tokenize", started)
            if len(ticket.tokens) > pairs:  # windows: the queue rule again, on the real count
                queued = self._tokenizing_at(ticket.priority) + batcher.pending_pairs(ticket.priority)
                self.admission.check_room(queued, len(ticket.tokens) - pairs)
            batcher.submit(ticket)
        except Exception as exc:  # bad input or a full queue: the request's answer, never the worker's end
            ticket.fail(exc)
        finally:
            self._release(ticket, pairs)

    # -- requests --------------------------------------------------------------------------

    def _enqueue_rerank(self, q: RerankQuery, deadline: float | None) -> Ticket:
        window, stride = self.admission.window(q)
        assert self.pair_tokenizer and self._score_batcher and self.scorer
        tokenizer = self.pair_tokenizer
        prompt = self.scorer.prompt(q.instruction)  # refuses an instruction the model takes none of
        return self._enqueue(self._score_batcher, len(q.documents), deadline, q.priority,
                             lambda: tokenizer.encode(q.query, q.documents, q.long_document, window, stride, prompt))

    def submit_rerank(self, q: RerankQuery, timeout: float | None = None) -> Request[RerankOutcome]:
        """Validate, admit and enqueue a rerank; raises at once what cannot be served (bad input, overload)."""
        self._require_ready()
        self.admission.check_rerank(q)
        self.admit(len(q.documents), timeout, priority=q.priority)
        return Request(self._enqueue_rerank(q, _deadline(timeout)), lambda ticket: self._ranked(q, ticket))

    def _ranked(self, q: RerankQuery, ticket: Ticket) -> RerankOutcome:
        logits = ticket.result()
        assert ticket.tokens is not None
        best = best_per_source(ticket.tokens.sources, logits, len(q.documents))
        scores = best if q.raw_scores else sigmoid(best)
        order = np.argsort(-scores, kind="stable")
        if q.top_k:
            order = order[: q.top_k]
        results = [Ranked(int(i), float(scores[i])) for i in order]
        usage = self._completed("rerank", self.settings.model, q.request_id, ticket)
        return RerankOutcome(q.request_id, results, usage, self.settings.model, q)

    def rerank(self, q: RerankQuery, timeout: float | None = None) -> RerankOutcome:
        return self.submit_rerank(q, timeout).result()

    def submit_score(self, pairs: list[tuple[str, str]], raw: bool = False,
                     mode: LongDocument = LongDocument.TRUNCATE, timeout: float | None = None,
                     request_id: str = "", instruction: str | None = None,
                     priority: int = 0) -> Request[ScoreOutcome]:
        """Validate, admit and enqueue raw pairs; the outcome keeps their order."""
        self._require_ready()
        self.admission.check_pairs(pairs)
        assert self.pair_tokenizer and self._score_batcher and self.scorer
        prompt = self.scorer.prompt(instruction)
        self.admit(len(pairs), timeout, priority=priority)
        tokenizer = self.pair_tokenizer
        by_query: dict[str, list[int]] = {}
        for i, (query, _) in enumerate(pairs):
            by_query.setdefault(query, []).append(i)
        window, stride = self.admission.window()

        def encode() -> Tokens:
            parts = []
            for query, indexes in by_query.items():
                tokens = tokenizer.encode(query, [pairs[i][1] for i in indexes], mode, window, stride, prompt)
                parts.append(dataclasses.replace(tokens, sources=np.asarray(indexes)[tokens.sources]))
            return Tokens.concat(parts)

        def scored(ticket: Ticket) -> ScoreOutcome:
            logits = ticket.result()
            assert ticket.tokens is not None
            best = best_per_source(ticket.tokens.sources, logits, len(pairs))
            usage = self._completed("score", self.settings.model, request_id, ticket)
            return ScoreOutcome((best if raw else sigmoid(best)).tolist(), usage)

        return Request(self._enqueue(self._score_batcher, len(pairs), _deadline(timeout), priority, encode), scored)

    def score(self, pairs: list[tuple[str, str]], raw: bool = False, mode: LongDocument = LongDocument.TRUNCATE,
              timeout: float | None = None, request_id: str = "", instruction: str | None = None,
              priority: int = 0) -> ScoreOutcome:
        return self.submit_score(pairs, raw, mode, timeout, request_id, instruction, priority).result()

    def submit_embed(self, texts: list[str], normalize: bool = False, timeout: float | None = None,
                     request_id: str = "", priority: int = 0) -> Request[EmbedOutcome]:
        self._require_ready()
        if self.embedder is None or self._embed_batcher is None:
            raise NotServedError("this worker serves no embedding model; start it with --embed-model")
        self.admission.check_texts("text", texts)
        self.admit(len(texts), timeout, embed=True, priority=priority)
        tokenizer = self.embedder.pair_tokenizer

        def embedded(ticket: Ticket) -> EmbedOutcome:
            vectors = ticket.result().astype(np.float32)
            if normalize:
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            return EmbedOutcome(vectors, self._completed("embed", self.settings.embed_model, request_id, ticket))

        ticket = self._enqueue(self._embed_batcher, len(texts), _deadline(timeout), priority,
                               lambda: tokenizer.encode_texts(texts))
        return Request(ticket, embedded)

    def embed(self, texts: list[str], normalize: bool = False, timeout: float | None = None,
              request_id: str = "") -> EmbedOutcome:
        return self.submit_embed(texts, normalize, timeout, request_id).result()

    def core_info(self) -> dict[str, Any]:
        """What a frontend needs of this (the core's) engine: its info, with the device it placed."""
        return dataclasses.asdict(self.info())

    def info(self) -> WorkerInfo:
        s = self.settings
        p = self.placement
        return WorkerInfo(
            model=s.model,
            embed_model=s.embed_model if s.serves_embeddings else "",
            device=str(p.device) if p else s.device,
            dtype=p.dtype_name if p else s.dtype,
            dtype_reason=(p.dtype_reason if p else "") + self._graph_reason(),
            backend=p.backend if p else s.backend,
            max_input_length=self.scorer.max_length if self.scorer else s.max_length,
            max_batch_tokens=self.batch_limits[0],
            max_batch_pairs=self.batch_limits[1],
            max_queue_pairs=s.max_queue_pairs,
            max_documents_per_request=s.max_documents_per_request,
            max_characters_per_request=s.max_characters_per_request,
            max_message_bytes=s.max_message_bytes,
            embed_dimensions=self.embedder.dimensions if self.embedder else 0,
            tokenizer_workers=self.tokenizer_workers,
            version=__version__,
        )
