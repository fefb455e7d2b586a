"""One evaluation: first stages, reranking and metrics over a BEIR folder, as a report (a dict).

Online (the default), the first stages run here and the worker scores the candidates over a
stream, as `crossrank search` does. With `via_jobs`, the pipeline's own index and rerank jobs do
it and the rankings are read back from the results collection; the jobs search densely only.
Rankings at each depth of a sweep are the deepest ranking cut at that depth.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from crossrank.client import CrossrankClient
from crossrank.pipeline import api
from crossrank.pipeline.evaluation import first_stage, metrics
from crossrank.pipeline.evaluation.beir import BeirData
from crossrank.pipeline.evaluation.collection import collection_name, ensure_collection
from crossrank.pipeline.evaluation.rerank import Scores, rerank, score_candidates
from crossrank.pipeline.settings import PipelineSettings

Progress = Callable[[str, int, int], None]  # (step, done, total)
Rankings = dict[str, dict[str, list[str]]]  # {stage: {query id: doc ids, best first}}


@dataclass(frozen=True)
class EvalConfig:
    stages: tuple[str, ...]
    depths: tuple[int, ...]  # initial_k of each row, ascending; one unless --sweep
    top_k: int
    profile: str | None = None
    rrf_k: int = first_stage.RRF_K
    via_jobs: bool = False
    collection: str | None = None

    def __post_init__(self):
        unknown = [s for s in self.stages if s not in first_stage.STAGES]
        if unknown or not self.stages:
            raise ValueError(f"unknown first stage {unknown[0] if unknown else ''!r}: use "
                             f"{', '.join(first_stage.STAGES)}")
        if self.via_jobs and self.stages != ("dense",):
            raise ValueError("the pipeline's rerank jobs search densely only: use --first-stage dense with "
                             "--via-jobs")
        if not self.depths or min(self.depths) < 1:
            raise ValueError("every initial_k must be at least 1")

    @property
    def deepest(self) -> int:
        return max(self.depths)


def _quiet(step: str, done: int, total: int) -> None:
    pass


class Evaluation:
    def __init__(self, data: BeirData, config: EvalConfig, settings: PipelineSettings,
                 progress: Progress = _quiet):
        self.data, self.config, self.settings, self.progress = data, config, settings, progress
        self.timings: dict[str, float] = {}
        self.texts = {d.id: d.text for d in data.documents}

    def _timed(self, step: str, fn: Callable):
        started = time.perf_counter()
        value = fn()
        self.timings[step] = round(self.timings.get(step, 0.0) + time.perf_counter() - started, 3)
        return value

    def run(self) -> dict:
        with CrossrankClient(**self.settings.client_kwargs()) as client:
            info = client.info()
            name = self.config.collection or collection_name(self.data.name, self.data.corpus_sha256,
                                                             info.embed_model)
            collection, indexed = None, False
            if {"dense", "hybrid"} & set(self.config.stages):
                documents = len(self.data.documents)
                collection, indexed = self._timed("index", lambda: ensure_collection(
                    client, self.settings, name, self.data.documents, via_jobs=self.config.via_jobs,
                    on_progress=lambda done: self.progress("indexing", done, documents)))
            if self.config.via_jobs:
                rankings, scores = self._via_jobs(name)
            else:
                rankings = self._first_stages(client, collection)
                scores = self._score(client, rankings, info.max_documents_per_request)
        rows = self._rows(rankings, scores)
        return {
            "data": {"path": str(self.data.path), "name": self.data.name, "corpus_sha256": self.data.corpus_sha256,
                     "documents": len(self.data.documents), "queries": len(self.data.queries),
                     "left_out": self.data.left_out},
            "config": {**asdict(self.config), "collection": name if collection is not None else None,
                       "initial_k": self.config.deepest, "ndcg_gain": "exponential (2^grade - 1)",
                       "bm25": {"library": "bm25s", "method": first_stage.BM25_METHOD, "k1": first_stage.BM25_K1,
                                "b": first_stage.BM25_B, "tokenization": first_stage.BM25_TOKENIZATION},
                       "target": self.settings.worker_target},
            "worker": {"model": info.model, "embed_model": info.embed_model, "device": info.device,
                       "dtype": info.dtype, "backend": info.backend, "version": info.version},
            "indexed": indexed,
            "pairs_scored": sum(len(s) for s in scores.values()),
            "timings_s": self.timings,
            "host": platform.node(),
            "rows": rows,
        }

    def _first_stages(self, client: CrossrankClient, collection) -> Rankings:
        queries, k = self.data.queries, self.config.deepest
        ids, texts = list(queries), list(queries.values())
        rankings: Rankings = {}
        if {"dense", "hybrid"} & set(self.config.stages):
            found: list[list[str]] = []
            step = 16
            for start in range(0, len(texts), step):
                found += self._timed("dense", lambda s=start: first_stage.dense_search(
                    client, collection, texts[s:s + step], k, self.settings.embed_batch_size))
                self.progress("dense search", len(found), len(texts))
            rankings["dense"] = dict(zip(ids, found, strict=True))
        if {"bm25", "hybrid"} & set(self.config.stages):
            self.progress("bm25", 0, len(texts))
            found = self._timed("bm25", lambda: first_stage.Bm25(self.data.documents).search(texts, k))
            self.progress("bm25", len(texts), len(texts))
            rankings["bm25"] = dict(zip(ids, found, strict=True))
        return rankings

    def _hybrid(self, rankings: Rankings, depth: int) -> dict[str, list[str]]:
        return {q: first_stage.reciprocal_rank_fusion([rankings["dense"][q][:depth], rankings["bm25"][q][:depth]],
                                                      depth, self.config.rrf_k)
                for q in self.data.queries}

    def _stage_rankings(self, rankings: Rankings, stage: str, depth: int) -> dict[str, list[str]]:
        if stage == "hybrid":
            return self._hybrid(rankings, depth)
        return {q: ranking[:depth] for q, ranking in rankings[stage].items()}

    def _score(self, client: CrossrankClient, rankings: Rankings, max_documents: int) -> Scores:
        candidates: dict[str, list[str]] = {q: [] for q in self.data.queries}
        for stage in self.config.stages:
            for depth in self.config.depths:
                for q, ranking in self._stage_rankings(rankings, stage, depth).items():
                    candidates[q] += ranking
        candidates = {q: first_stage.first_of_each(ids) for q, ids in candidates.items()}
        total = len(candidates)
        self.progress("reranking", 0, total)
        return self._timed("rerank", lambda: score_candidates(
            client, self.data.queries, candidates, self.texts, max_documents=max_documents,
            on_progress=lambda done: self.progress("reranking", done, total)))

    def _via_jobs(self, collection: str) -> tuple[Rankings, Scores]:
        k, total = self.config.deepest, len(self.data.queries)
        job_id = api.submit_rerank([{"id": q, "text": t} for q, t in self.data.queries.items()], collection,
                                   initial_k=k, top_k=k, settings=self.settings)
        job = self._timed("rerank job", lambda: api.wait(
            job_id, on_progress=lambda j: self.progress("rerank job", j.done, total), settings=self.settings))
        if job.state != "done" or job.counts.get("failed"):
            raise RuntimeError(f"rerank job {job_id} ended {job.state} with errors {job.errors[:1]}: see "
                               f"crossrank jobs status {job_id}")
        dense: dict[str, list[str]] = {q: [] for q in self.data.queries}
        scores: Scores = {q: {} for q in self.data.queries}
        for q, records in api.summarize(api.results(job_id, settings=self.settings)).items():
            dense[q] = [r.doc_id for r in sorted(records, key=lambda r: r.initial_rank)]
            scores[q] = {r.doc_id: r.score for r in records}
        return {"dense": dense}, scores

    def _rows(self, rankings: Rankings, scores: Scores) -> list[dict]:
        rows = []
        for stage in self.config.stages:
            for depth in self.config.depths:
                first = self._stage_rankings(rankings, stage, depth)
                reranked = {q: rerank(ranking, scores[q]) for q, ranking in first.items()}
                for name, ranked in ((stage, first), (f"{stage}+rerank", reranked)):
                    per_query = metrics.evaluate(self.data.qrels, ranked, depth)
                    rows.append({"stage": name, "initial_k": depth, "metrics": metrics.mean(per_query),
                                 "per_query": per_query,
                                 "rankings": {q: r[:10] for q, r in ranked.items()}})
        return rows
