"""Scoring each query's candidates with the worker, once per (query, document) pair.

A cross-encoder scores a pair on its own, whatever else is in the request, so the candidates of
every first stage and every depth of a sweep are scored together and each ranking is then the
first stage's candidates sorted by score: one worker pass instead of one per stage and depth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from crossrank.client import CrossrankClient, RerankRequest

Scores = dict[str, dict[str, float]]  # {query id: {doc id: cross-encoder score}}


def score_candidates(client: CrossrankClient, queries: Mapping[str, str], candidates: Mapping[str, Sequence[str]],
                     texts: Mapping[str, str], *, max_documents: int, queries_per_stream: int = 2,
                     on_progress: Callable[[int], None] | None = None) -> Scores:
    """Every candidate's score; `on_progress` gets the number of queries done after each stream.

    Each stream carries a few queries, so that one stream's candidates (hundreds of pairs) fit in the
    client's deadline even on a loaded CPU worker, and the progress bar moves.
    """
    scores: Scores = {q: {} for q in candidates}
    query_ids = list(candidates)
    for start in range(0, len(query_ids), queries_per_stream):
        requests: list[RerankRequest] = []
        for q in query_ids[start:start + queries_per_stream]:
            ids = list(candidates[q])
            for piece in range(0, len(ids), max_documents):
                requests.append(RerankRequest(queries[q], [texts[d] for d in ids[piece:piece + max_documents]],
                                              request_id=f"{q}\t{piece}"))
        for response in client.stream(requests, timeout=client.timeout):
            if response.error is not None:
                raise response.error
            q, piece = response.request_id.rsplit("\t", 1)
            ids = candidates[q]
            for result in response.results:
                scores[q][ids[int(piece) + result.index]] = result.score
        if on_progress is not None:
            on_progress(min(start + queries_per_stream, len(query_ids)))
    return scores


def rerank(ranking: Sequence[str], scores: Mapping[str, float]) -> list[str]:
    """The ranking sorted by score, highest first; equal scores keep the first stage's order."""
    return sorted(ranking, key=lambda d: -scores[d])
