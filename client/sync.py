"""The blocking client.

    with CrossrankClient("localhost:50051") as client:
        for r in client.rerank("什么是RAG技术？", docs, top_k=3).results:
            print(r.index, r.score)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

import grpc

from crossrank.client._base import BaseClient, as_request
from crossrank.client.types import EmbedResponse, RerankRequest, RerankResponse, ScoreResponse, WorkerInfo
from crossrank.protos import pb, pb_grpc


class CrossrankClient(BaseClient):
    def __init__(self, target: str | Sequence[str] = "localhost:50051", *, channel: grpc.Channel | None = None,
                 **kwargs):
        """`channel` injects a ready channel (tests, custom interceptors) in place of `target`."""
        super().__init__(target, **kwargs)
        self._channels: list[grpc.Channel | None] = [channel] if channel else [None] * len(self.targets)
        if channel:
            self.targets = self.targets[:1]
            self._down_until = [0.0]

    def __enter__(self) -> CrossrankClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for channel in self._channels:
            if channel is not None:
                channel.close()
        self._channels = [None] * len(self._channels)

    def _stub(self, i: int) -> pb_grpc.RerankerStub:
        if self._channels[i] is None:
            target, credentials, options = self._channel_args(i)
            self._channels[i] = (grpc.secure_channel(target, credentials, options) if credentials
                                 else grpc.insecure_channel(target, options))
        return pb_grpc.RerankerStub(self._channels[i])

    def _call(self, method: str, request, timeout: float | None):
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            i = self._pick()
            try:
                rpc = getattr(self._stub(i), method)
                return rpc(request, timeout=max(deadline - time.monotonic(), 0.001), metadata=self._metadata)
            except grpc.RpcError as exc:
                if not self._should_retry(exc, deadline):
                    raise self._error(exc, self.targets) from None
                self._mark_down(i)
                time.sleep(max(0.0, min(self.retry.delay(attempt), deadline - time.monotonic())))
                attempt += 1

    def rerank(self, query: str, documents: Sequence[str], *, top_k: int = 0, return_documents: bool = False,
               raw_scores: bool = False, long_document: str = "truncate", request_id: str = "",
               timeout: float | None = None) -> RerankResponse:
        """Rank documents against query, highest score first; `top_k=0` returns all."""
        req = RerankRequest(query, list(documents), request_id, top_k, return_documents, raw_scores, long_document)
        response = self._call("Rerank", self._rerank_request(req), timeout)
        return self._rerank_response(response, return_documents)

    def stream(self, requests: Iterable[RerankRequest | dict], *, timeout: float | None = None
               ) -> Iterator[RerankResponse]:
        """Send many requests over one stream; responses come in completion order, matched by request_id.

        A request that failed has `error` set and no results; the stream goes on.
        """
        messages = (self._rerank_request(as_request(r)) for r in requests)
        i = self._pick()
        try:
            for response in self._stub(i).RerankStream(messages, timeout=timeout, metadata=self._metadata):
                yield self._rerank_response(response)
        except grpc.RpcError as exc:
            raise self._error(exc, self.targets) from None

    def score(self, pairs: Sequence[tuple[str, str]], *, raw_scores: bool = False, long_document: str = "truncate",
              timeout: float | None = None) -> ScoreResponse:
        """One score per (query, document) pair, in input order."""
        return self._score_response(self._call("Score", self._score_request(pairs, raw_scores, long_document),
                                               timeout))

    def embed(self, texts: Sequence[str], *, normalize: bool = True, timeout: float | None = None) -> EmbedResponse:
        return self._embed_response(self._call("Embed", self._embed_request(texts, normalize), timeout))

    def info(self, *, timeout: float | None = None) -> WorkerInfo:
        return self._info(self._call("Info", pb.InfoRequest(), timeout))
