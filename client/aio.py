"""The asyncio client: the same calls as CrossrankClient, awaited.

    async with AsyncCrossrankClient("localhost:50051") as client:
        response = await client.rerank(query, docs, top_k=5)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence

import grpc
from grpc import aio

from crossrank.client._base import BaseClient, Method, as_request
from crossrank.client.types import EmbedResponse, RerankRequest, RerankResponse, ScoreResponse, WorkerInfo
from crossrank.protos import pb


class AsyncCrossrankClient(BaseClient[aio.Channel]):
    async def __aenter__(self) -> AsyncCrossrankClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._take_channels():
            await channel.close()

    def _open(self, target: str, credentials: grpc.ChannelCredentials | None, options: list) -> aio.Channel:
        return aio.secure_channel(target, credentials, options) if credentials else aio.insecure_channel(
            target, options)

    async def _call(self, method: Method, request, timeout: float | None):
        attempts = self._attempts(timeout)
        while True:
            stub, left = attempts.next()
            try:
                return await method(stub)(request, timeout=left, metadata=self._metadata)
            except grpc.RpcError as exc:
                await asyncio.sleep(attempts.failed(exc))

    async def rerank(self, query: str, documents: Sequence[str], *, top_k: int = 0, return_documents: bool = False,
                     raw_scores: bool = False, long_document: str = "truncate", request_id: str = "",
                     instruction: str | None = None, timeout: float | None = None,
                     priority: int = 0) -> RerankResponse:
        req = RerankRequest(query, list(documents), request_id, top_k, return_documents, raw_scores, long_document,
                            instruction=instruction, priority=priority)
        response = await self._call(lambda stub: stub.Rerank, self._rerank_request(req), timeout)
        return self._rerank_response(response, return_documents)

    async def stream(self, requests: Iterable[RerankRequest | dict] | AsyncIterable[RerankRequest | dict], *,
                     timeout: float | None = None) -> AsyncIterator[RerankResponse]:
        """Requests are read as the stream sends them, from a sync or an async iterable."""

        async def messages() -> AsyncIterator[pb.RerankRequest]:
            if isinstance(requests, AsyncIterable):
                async for r in requests:
                    yield self._rerank_request(as_request(r))
            else:
                for r in requests:
                    yield self._rerank_request(as_request(r))

        call = self._stub(self._pick()).RerankStream(messages(), timeout=self._timeout(timeout),
                                                     metadata=self._metadata)
        try:
            async for response in call:
                yield self._rerank_response(response)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    async def score(self, pairs: Sequence[tuple[str, str]], *, raw_scores: bool = False,
                    long_document: str = "truncate", instruction: str | None = None,
                    timeout: float | None = None, priority: int = 0) -> ScoreResponse:
        request = self._score_request(pairs, raw_scores, long_document, instruction, priority)
        return self._score_response(await self._call(lambda stub: stub.Score, request, timeout))

    async def embed(self, texts: Sequence[str], *, normalize: bool = True,
                    timeout: float | None = None, priority: int = 0) -> EmbedResponse:
        request = self._embed_request(texts, normalize, priority)
        return self._embed_response(await self._call(lambda stub: stub.Embed, request, timeout))

    async def info(self, *, timeout: float | None = None) -> WorkerInfo:
        return self._info(await self._call(lambda stub: stub.Info, pb.InfoRequest(), timeout))
