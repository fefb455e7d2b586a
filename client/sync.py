"""The blocking client.

    with CrossrankClient("localhost:50051") as client:
        for r in client.rerank("什么是RAG技术？", docs, top_k=3).results:
            print(r.index, r.score)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

import grpc

from crossrank.client._base import BaseClient, Method, as_request
from crossrank.client.types import EmbedResponse, RerankRequest, RerankResponse, ScoreResponse, WorkerInfo
from crossrank.protos import pb


class CrossrankClient(BaseClient[grpc.Channel]):
    def __enter__(self) -> CrossrankClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for channel in self._take_channels():
            channel.close()

    def _open(self, target: str, credentials: grpc.ChannelCredentials | None, options: list) -> grpc.Channel:
        return grpc.secure_channel(target, credentials, options) if credentials else grpc.insecure_channel(
            target, options)

    def _call(self, method: Method, request, timeout: float | None):
        attempts = self._attempts(timeout)
        while True:
            stub, left = attempts.next()
            try:
                return method(stub)(request, timeout=left, metadata=self._metadata)
            except grpc.RpcError as exc:
                time.sleep(attempts.failed(exc))

    def connect(self, timeout: float = 2.0) -> None:
        """Wait up to `timeout` seconds for a connection to any target; UnavailableError if none answers.

        For a command that should say at once that nothing listens, rather than retry for its whole
        deadline; the calls themselves keep retrying a worker that goes away mid-session."""
        ready = [grpc.channel_ready_future(self._channel(i)) for i in range(len(self.targets))]
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if any(f.done() for f in ready):
                    return
                time.sleep(0.02)
            raise self._no_worker()
        finally:
            for f in ready:
                f.cancel()

    def rerank(self, query: str, documents: Sequence[str], *, top_k: int = 0, return_documents: bool = False,
               raw_scores: bool = False, long_document: str = "truncate", request_id: str = "",
               instruction: str | None = None, timeout: float | None = None, priority: int = 0) -> RerankResponse:
        """Rank documents against query, highest score first; `top_k=0` returns all; lower `priority` is sooner.

        `instruction` is the task in words, for models that take one (LLM rerankers such as Qwen3-Reranker);
        None uses the model's default prompt."""
        req = RerankRequest(query, list(documents), request_id, top_k, return_documents, raw_scores, long_document,
                            instruction=instruction, priority=priority)
        response = self._call(lambda stub: stub.Rerank, self._rerank_request(req), timeout)
        return self._rerank_response(response, return_documents)

    def stream(self, requests: Iterable[RerankRequest | dict], *, timeout: float | None = None
               ) -> Iterator[RerankResponse]:
        """Send many requests over one stream; responses come in completion order, matched by request_id.

        A request that failed has `error` set and no results; the stream goes on. `timeout` covers the
        whole stream (default: the client's)."""
        messages = (self._rerank_request(as_request(r)) for r in requests)
        stub = self._stub(self._pick())
        try:
            for response in stub.RerankStream(messages, timeout=self._timeout(timeout), metadata=self._metadata):
                yield self._rerank_response(response)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def score(self, pairs: Sequence[tuple[str, str]], *, raw_scores: bool = False, long_document: str = "truncate",
              instruction: str | None = None, timeout: float | None = None, priority: int = 0) -> ScoreResponse:
        """One score per (query, document) pair, in input order; `instruction` and `priority` as in `rerank`."""
        request = self._score_request(pairs, raw_scores, long_document, instruction, priority)
        return self._score_response(self._call(lambda stub: stub.Score, request, timeout))

    def embed(self, texts: Sequence[str], *, normalize: bool = True, timeout: float | None = None,
              priority: int = 0) -> EmbedResponse:
        request = self._embed_request(texts, normalize, priority)
        return self._embed_response(self._call(lambda stub: stub.Embed, request, timeout))

    def info(self, *, timeout: float | None = None) -> WorkerInfo:
        return self._info(self._call(lambda stub: stub.Info, pb.InfoRequest(), timeout))
