"""Two-stage retrieval: the collection's nearest passages by embedding, then the cross-encoder.

Retrieve and rerank as a library call, the pattern of sentence-transformers' example:
https://github.com/UKPLab/sentence-transformers/tree/master/examples/sentence_transformer/applications/retrieve_rerank
`search_many` is what a rerank job runs per chunk: one Embed call for all its queries, one Chroma
query, and one `RerankStream` carrying every query's candidates, so the worker batches them together.

A job's calls carry its bulk `priority`; the worker refuses those first when it is full
(RESOURCE_EXHAUSTED), so the queries it refused are sent again, alone, after a backoff, until the
client's timeout: under live load a job slows down rather than failing its queries. So are queries
that met a restarting engine core (UNAVAILABLE on the query, `serve --frontends`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chromadb.api.models.Collection import Collection

from crossrank.client import (
    CrossrankClient,
    CrossrankError,
    OverloadedError,
    RerankRequest,
    UnavailableError,
    backoff,
)

log = logging.getLogger(__name__)

# A query's error that means "not now": sent again after a backoff, within the client's timeout.
NOT_NOW = (OverloadedError, UnavailableError)


@dataclass(frozen=True)
class Hit:
    rank: int  # 1-based, after reranking
    initial_rank: int  # 1-based, in the vector search
    score: float
    passage_id: str
    doc_id: str
    text: str
    metadata: dict = field(default_factory=dict)
    embedding: list[float] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    model: str = ""
    pairs: int = 0
    error: CrossrankError | None = None  # this query failed; the others did not


class TwoStageRetriever:
    def __init__(self, client: CrossrankClient, collection: Collection, priority: int = 0):
        self.client = client
        self.collection = collection
        self.priority = priority  # lower is sooner: 0 for a live search, the bulk setting for a job

    def search(self, query: str, initial_k: int = 50, top_k: int = 5) -> list[Hit]:
        result = self.search_many([query], initial_k, top_k)[0]
        if result.error is not None:
            raise result.error
        return result.hits

    def search_many(self, queries: Sequence[str], initial_k: int, top_k: int, with_embeddings: bool = False,
                    request_ids: Sequence[str] | None = None,
                    on_result: Callable[[SearchResult], None] | None = None) -> list[SearchResult]:
        """`request_ids` name each query's request in the worker's logs (a job passes `job/query`);
        `on_result` sees each query's result as soon as the worker has scored it."""
        if initial_k < 1 or top_k < 0:
            raise ValueError("initial_k must be at least 1 and top_k at least 0")
        if not queries:
            return []
        size = self.collection.count()
        if size == 0:
            return [SearchResult(q, []) for q in queries]
        vectors = self.client.embed(list(queries), priority=self.priority).embeddings
        include = ["documents", "metadatas"] + (["embeddings"] if with_embeddings else [])
        found = self.collection.query(query_embeddings=vectors, n_results=min(initial_k, size), include=include)
        ids = list(request_ids) if request_ids is not None else [str(i) for i in range(len(queries))]
        requests = [RerankRequest(query=q, documents=list(found["documents"][i]), request_id=ids[i], top_k=top_k,
                                  priority=self.priority) for i, q in enumerate(queries)]
        position = {request_id: i for i, request_id in enumerate(ids)}
        results: list[SearchResult] = [SearchResult(q, []) for q in queries]
        sending = [r for r in requests if r.documents]
        give_up = time.monotonic() + self.client.timeout
        for attempt in itertools.count():
            refused = []
            for response in self.client.stream(sending, timeout=self.client.timeout):
                i = position[response.request_id]
                if isinstance(response.error, NOT_NOW) and time.monotonic() < give_up:
                    refused.append((requests[i], response.error))
                    continue
                if response.error is not None:
                    results[i] = SearchResult(queries[i], [], error=response.error)
                else:
                    results[i] = self._result(queries[i], response, found, i, with_embeddings,
                                              len(requests[i].documents))
                if on_result is not None:
                    on_result(results[i])
            if not refused:
                break
            sending = [request for request, _ in refused]
            pause = backoff(attempt, initial=0.1, maximum=5.0)
            why = "worker full" if all(isinstance(e, OverloadedError) for _, e in refused) else "worker restarting"
            log.info("%s: %d queries refused at priority %d; sending them again in %.1fs", why, len(refused),
                     self.priority, pause)
            time.sleep(pause)
        return results

    @staticmethod
    def _result(query: str, response, found: dict, i: int, with_embeddings: bool, pairs: int) -> SearchResult:
        hits = []
        for rank, r in enumerate(response.results, 1):
            metadata = dict(found["metadatas"][i][r.index] or {})
            embedding = found["embeddings"][i][r.index] if with_embeddings else None
            hits.append(Hit(rank=rank, initial_rank=r.index + 1, score=r.score,
                            passage_id=found["ids"][i][r.index], doc_id=str(metadata.get("doc_id", "")),
                            text=found["documents"][i][r.index], metadata=metadata,
                            embedding=[float(x) for x in embedding] if embedding is not None else None))
        return SearchResult(query, hits, model=response.model, pairs=pairs)
