"""What the sync and async clients share: channels, targets, credentials, retries, deadlines, and the
protobuf edge."""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

from crossrank.client.exceptions import CrossrankError, UnavailableError, from_code_value, from_status
from crossrank.client.settings import ClientSettings
from crossrank.client.types import (
    EmbedResponse,
    RerankRequest,
    RerankResponse,
    RerankResult,
    ScoreResponse,
    Usage,
    WorkerInfo,
)
from crossrank.common.net import DEFAULT_TARGET
from crossrank.protos import pb, pb_grpc

_LONG_DOCUMENT = {"truncate": pb.LONG_DOCUMENT_TRUNCATE, "window": pb.LONG_DOCUMENT_WINDOW,
                  "error": pb.LONG_DOCUMENT_ERROR}
DEFAULT_TIMEOUT: float = ClientSettings.timeout
Channel = TypeVar("Channel")
# A stub method, passed rather than named: `lambda stub: stub.Rerank`.
Method = Callable[[pb_grpc.RerankerStub], Callable]


def backoff(attempt: int, initial: float, maximum: float, multiplier: float = 2.0) -> float:
    """Exponential backoff with jitter: the delay before retry number `attempt` (from 0)."""
    return min(maximum, initial * multiplier**attempt) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, on UNAVAILABLE only, within the call's deadline."""

    initial: float = 0.1
    maximum: float = 2.0
    multiplier: float = 2.0
    # A dead target is skipped for this long before it is tried again.
    cooldown: float = 2.0

    def delay(self, attempt: int) -> float:
        return backoff(attempt, self.initial, self.maximum, self.multiplier)


def parse_targets(target: str | Sequence[str]) -> list[str]:
    """'h1:p1,h2:p2', a list of them, or one 'dns:///name:port' (balanced by gRPC itself)."""
    parts = [target] if isinstance(target, str) else list(target)
    targets = [t.strip() for part in parts for t in part.split(",") if t.strip()]
    if not targets:
        raise ValueError("no target: give host:port, a comma-separated list, or dns:///name:port")
    return targets


class BaseClient(Generic[Channel]):
    """Everything but waiting: channels, targets, retries, deadlines, and the protobuf edge.

    The sync and async clients differ only in how they wait: `_open` makes a grpc or grpc.aio
    channel, and their call loops sleep or await between the attempts that `_Attempts` plans.
    """

    def __init__(
        self,
        target: str | Sequence[str] = DEFAULT_TARGET,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
        ca_cert: str | bytes | None = None,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, object]] = (),
        channel: Channel | None = None,
    ):
        """`channel` injects a ready channel (tests, custom interceptors) in place of `target`."""
        self.targets = parse_targets(target)[:1] if channel is not None else parse_targets(target)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._credentials = _channel_credentials(ca_cert)
        self._options = [
            ("grpc.lb_policy_name", "round_robin"),  # spreads a dns:/// name over all its addresses
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            *options,
        ]
        self._channels: list[Channel | None] = [channel] if channel is not None else [None] * len(self.targets)
        self._turn = itertools.count()
        self._down_until = [0.0] * len(self.targets)
        self._lock = threading.Lock()

    # -- channels ------------------------------------------------------------------------------

    def _open(self, target: str, credentials: grpc.ChannelCredentials | None, options: list) -> Channel:
        raise NotImplementedError

    def _channel(self, i: int) -> Channel:
        if self._channels[i] is None:
            self._channels[i] = self._open(self.targets[i], self._credentials, self._options)
        return self._channels[i]

    def _stub(self, i: int) -> pb_grpc.RerankerStub:
        return pb_grpc.RerankerStub(self._channel(i))

    def _take_channels(self) -> list[Channel]:
        """The open channels, forgotten here, for the subclass to close."""
        open_ = [c for c in self._channels if c is not None]
        self._channels = [None] * len(self._channels)
        return open_

    # -- target choice and retries -------------------------------------------------------------

    def _pick(self) -> int:
        """Round robin over targets, skipping those that failed recently unless all did."""
        now = time.monotonic()
        with self._lock:
            start = next(self._turn)
            for k in range(len(self.targets)):
                i = (start + k) % len(self.targets)
                if self._down_until[i] <= now:
                    return i
            return start % len(self.targets)

    def _mark_down(self, i: int) -> None:
        with self._lock:
            self._down_until[i] = time.monotonic() + self.retry.cooldown

    def _attempts(self, timeout: float | None) -> _Attempts:
        return _Attempts(self, time.monotonic() + self._timeout(timeout))

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def _error(self, exc: grpc.RpcError) -> CrossrankError:
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            return UnavailableError(f"no worker answered at {', '.join(self.targets)}: {details}")
        return from_status(code, details)

    def _no_worker(self) -> UnavailableError:
        return UnavailableError(f"no worker at {', '.join(self.targets)} (start one with `crossrank serve`)")

    # -- requests ----------------------------------------------------------------------------

    @staticmethod
    def _rerank_request(req: RerankRequest) -> pb.RerankRequest:
        if req.long_document not in _LONG_DOCUMENT:
            raise ValueError(f"long_document must be one of {', '.join(_LONG_DOCUMENT)}")
        return pb.RerankRequest(
            request_id=req.request_id or uuid.uuid4().hex,
            query=req.query,
            documents=list(req.documents),
            top_k=req.top_k,
            return_documents=req.return_documents,
            raw_scores=req.raw_scores,
            long_document=_LONG_DOCUMENT[req.long_document],
            window_tokens=req.window_tokens,
            window_stride=req.window_stride,
            instruction=req.instruction,
            priority=req.priority,
        )

    @staticmethod
    def _score_request(pairs: Sequence[tuple[str, str]], raw_scores: bool, long_document: str,
                       instruction: str | None = None, priority: int = 0) -> pb.ScoreRequest:
        return pb.ScoreRequest(
            request_id=uuid.uuid4().hex,
            pairs=[pb.ScorePair(query=q, document=d) for q, d in pairs],
            raw_scores=raw_scores,
            long_document=_LONG_DOCUMENT[long_document],
            instruction=instruction,
            priority=priority,
        )

    @staticmethod
    def _embed_request(texts: Sequence[str], normalize: bool, priority: int = 0) -> pb.EmbedRequest:
        return pb.EmbedRequest(request_id=uuid.uuid4().hex, texts=list(texts), normalize=normalize, priority=priority)

    # -- responses ---------------------------------------------------------------------------

    @staticmethod
    def _usage(u: pb.Usage) -> Usage:
        return Usage(u.pairs, u.tokens, u.queue_ms, u.inference_ms)

    @classmethod
    def _rerank_response(cls, r: pb.RerankResponse, return_documents: bool = True) -> RerankResponse:
        error = from_code_value(r.error.code, r.error.message) if r.HasField("error") else None
        results = [RerankResult(d.index, d.score, d.document if return_documents and d.document else None)
                   for d in r.results]
        return RerankResponse(r.request_id, results, r.model, cls._usage(r.usage), error)

    @classmethod
    def _score_response(cls, r: pb.ScoreResponse) -> ScoreResponse:
        return ScoreResponse(list(r.scores), r.model, cls._usage(r.usage))

    @classmethod
    def _embed_response(cls, r: pb.EmbedResponse) -> EmbedResponse:
        return EmbedResponse([list(e.values) for e in r.embeddings], r.dimensions, r.model, cls._usage(r.usage))

    @staticmethod
    def _info(r: pb.InfoResponse) -> WorkerInfo:
        values = {f.name: getattr(r, f.name) for f in dataclasses.fields(WorkerInfo)}
        values["state"] = _WORKER_STATES.get(r.state, "ready")  # a worker older than the field is ready
        return WorkerInfo(**values)


_WORKER_STATES = {pb.WORKER_STATE_LOADING: "loading", pb.WORKER_STATE_FAILED: "failed"}


def _channel_credentials(ca_cert: str | bytes | None) -> grpc.ChannelCredentials | None:
    if ca_cert is None or ca_cert == "":
        return None
    if isinstance(ca_cert, str):
        with open(ca_cert, "rb") as f:
            ca_cert = f.read()
    return grpc.ssl_channel_credentials(root_certificates=ca_cert)


def as_request(item: RerankRequest | dict) -> RerankRequest:
    return item if isinstance(item, RerankRequest) else RerankRequest(**item)


class _Attempts:
    """One unary call's attempts within its deadline: the target of each, its time left, and what a
    failure means (raise it as a CrossrankError, or the seconds to wait before the next attempt)."""

    def __init__(self, client: BaseClient, deadline: float):
        self.client, self.deadline, self.number, self.target = client, deadline, 0, 0

    def next(self) -> tuple[pb_grpc.RerankerStub, float]:
        """(stub, timeout) of the next attempt."""
        self.target = self.client._pick()
        return self.client._stub(self.target), max(self.deadline - time.monotonic(), 0.001)

    def failed(self, exc: grpc.RpcError) -> float:
        delay = self.client.retry.delay(self.number)
        # No time left for another attempt after the backoff: this failure is the answer. (Sleeping to
        # the deadline would end in an attempt with no time, and say "deadline exceeded" for "loading".)
        if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() + delay >= self.deadline:
            raise self.client._error(exc) from None
        self.client._mark_down(self.target)
        self.number += 1
        return delay
