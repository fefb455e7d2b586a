"""The asyncio client: the same calls as CrossrankClient, awaited.

    async with AsyncCrossrankClient("localhost:50051") as client:
        response = await client.rerank(query, docs, top_k=5)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence

import grpc
from grpc import aio

from crossrank.client._base import BaseClient, as_request
from crossrank.client.types import EmbedResponse, RerankRequest, RerankResponse, ScoreResponse, WorkerInfo
from crossrank.protos import pb, pb_grpc


class AsyncCrossrankClient(BaseClient):
    def __init__(self, target: str | Sequence[str] = "localhost:50051", *, channel: aio.Channel | None = None,
                 **kwargs):
        super().__init__(target, **kwargs)
        self._channels: list[aio.Channel | None] = [channel] if channel else [None] * len(self.targets)
        if channel:
            self.targets = self.targets[:1]
            self._down_until = [0.0]

    async def __aenter__(self) -> AsyncCrossrankClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._channels:
            if channel is not None:
                await channel.close()
        self._channels = [None] * len(self._channels)

    def _stub(self, i: int) -> pb_grpc.RerankerStub:
        if self._channels[i] is None:
            target, credentials, options = self._channel_args(i)
            self._channels[i] = (aio.secure_channel(target, credentials, options) if credentials
                                 else aio.insecure_channel(target, options))
        return pb_grpc.RerankerStub(self._channels[i])

    async def _call(self, method: str, request, timeout: float | None):
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            i = self._pick()
            try:
                rpc = getattr(self._stub(i), method)
                return await rpc(request, timeout=max(deadline - time.monotonic(), 0.001), metadata=self._metadata)
            except grpc.RpcError as exc:
                if not self._should_retry(exc, deadline):
                    raise self._error(exc, self.targets) from None
                self._mark_down(i)
                await asyncio.sleep(max(0.0, min(self.retry.delay(attempt), deadline - time.monotonic())))
                attempt += 1

    async def rerank(self, query: str, documents: Sequence[str], *, top_k: int = 0, return_documents: bool = False,
                     raw_scores: bool = False, long_document: str = "truncate", request_id: str = "",
                     timeout: float | None = None) -> RerankResponse:
        req = RerankRequest(query, list(documents), request_id, top_k, return_documents, raw_scores, long_document)
        response = await self._call("Rerank", self._rerank_request(req), timeout)
        return self._rerank_response(response, return_documents)

    async def stream(self, requests: Iterable[RerankRequest | dict], *, timeout: float | None = None
                     ) -> AsyncIterator[RerankResponse]:
        messages = [self._rerank_request(as_request(r)) for r in requests]
        call = self._stub(self._pick()).RerankStream(iter(messages), timeout=timeout, metadata=self._metadata)
        try:
            async for response in call:
                yield self._rerank_response(response)
        except grpc.RpcError as exc:
            raise self._error(exc, self.targets) from None

    async def score(self, pairs: Sequence[tuple[str, str]], *, raw_scores: bool = False,
                    long_document: str = "truncate", timeout: float | None = None) -> ScoreResponse:
        request = self._score_request(pairs, raw_scores, long_document)
        return self._score_response(await self._call("Score", request, timeout))

    async def embed(self, texts: Sequence[str], *, normalize: bool = True,
                    timeout: float | None = None) -> EmbedResponse:
        return self._embed_response(await self._call("Embed", self._embed_request(texts, normalize), timeout))

    async def info(self, *, timeout: float | None = None) -> WorkerInfo:
        return self._info(await self._call("Info", pb.InfoRequest(), timeout))
