"""The three first stages an evaluation compares: dense (the pipeline's), BM25, and their fusion.

A ranking is a list of document ids, best first. Dense search runs on the pipeline's own Chroma
collection with the worker's `Embed`; a collection holds passages, and a document ranks where its
best passage does.
"""

from __future__ import annotations

from collections.abc import Sequence

from chromadb.api.models.Collection import Collection

from crossrank.client import CrossrankClient
from crossrank.pipeline.documents import Document

STAGES = ("dense", "bm25", "hybrid")
# Cormack, Clarke and Buettcher (SIGIR 2009): k = 60 is the constant of reciprocal-rank fusion.
RRF_K = 60
# bm25s's defaults, as the figures in data/SOURCES.md used them.
BM25_METHOD, BM25_K1, BM25_B = "lucene", 1.5, 0.75
BM25_TOKENIZATION = ("bm25s.tokenize: lowercased, words of 2+ word characters (regex (?u)\\b\\w\\w+\\b), "
                     "English stopwords removed, no stemming")


def first_of_each(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


class Bm25:
    """BM25 over the corpus, in memory: bm25s builds the index for 5,000 documents in about a second."""

    def __init__(self, documents: Sequence[Document]):
        import bm25s

        self.ids = [d.id for d in documents]
        self.retriever = bm25s.BM25(method=BM25_METHOD, k1=BM25_K1, b=BM25_B)
        self.retriever.index(bm25s.tokenize([d.text for d in documents], stopwords="en", show_progress=False),
                             show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> list[list[str]]:
        import bm25s

        tokens = bm25s.tokenize(list(queries), stopwords="en", show_progress=False)
        found, _ = self.retriever.retrieve(tokens, k=min(k, len(self.ids)), show_progress=False, n_threads=1)
        return [[self.ids[j] for j in row] for row in found.tolist()]


def dense_search(client: CrossrankClient, collection: Collection, queries: Sequence[str], k: int,
                 embed_batch: int = 64) -> list[list[str]]:
    """The `k` nearest documents of each query (an evaluation indexes each document as one passage)."""
    vectors: list[list[float]] = []
    for start in range(0, len(queries), embed_batch):
        vectors += client.embed(list(queries[start:start + embed_batch])).embeddings
    size = collection.count()
    found = collection.query(query_embeddings=vectors, n_results=min(k, size), include=["metadatas"])
    return [first_of_each(str(m["doc_id"]) for m in metadatas)[:k] for metadatas in found["metadatas"]]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int, rrf_k: int = RRF_K) -> list[str]:
    """The `k` best documents by the sum of 1 / (rrf_k + rank) over the rankings; ties keep first-seen order."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, 1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused, key=lambda d: -fused[d])[:k]
