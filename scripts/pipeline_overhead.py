"""Pipeline overhead: an offline rerank job's pairs/s against the worker's raw pairs/s, same pairs.

Run against a live stack (the CROSSRANK_* variables, e.g. from `crossrank up`) whose collection is
already indexed:

    python scripts/pipeline_overhead.py --collection msmarco --queries queries.jsonl --initial-k 20 --top-k 3

1. raw: the same candidates the job will rerank (Embed + Chroma once, untimed) go to the worker
   in one RerankStream, all in flight: the worker's own throughput on those pairs;
2. job: `submit_rerank` with the same depths; its pairs/s as `crossrank jobs status` shows it
   (pairs / time from its first chunk's start to its end, so embedding, Chroma and writes count).
"""

from __future__ import annotations

import argparse
import json
import time

from crossrank.client import CrossrankClient, RerankRequest
from crossrank.pipeline import api
from crossrank.pipeline.documents import read_queries
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import open_chroma, open_collection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--initial-k", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()

    settings = PipelineSettings.from_env()
    queries, _ = read_queries(args.queries)
    texts = [q.text for q in queries]
    with CrossrankClient(**settings.client_kwargs()) as client:
        collection = open_collection(open_chroma(settings), args.collection)
        found = collection.query(query_embeddings=client.embed(texts).embeddings, n_results=args.initial_k,
                                 include=["documents"])
        requests = [RerankRequest(q, list(docs), request_id=str(i), top_k=args.top_k)
                    for i, (q, docs) in enumerate(zip(texts, found["documents"], strict=True))]
        pairs = sum(len(r.documents) for r in requests)
        started = time.perf_counter()
        responses = list(client.stream(requests))
        raw_seconds = time.perf_counter() - started
        assert len(responses) == len(requests) and not any(r.error for r in responses)

    job = api.wait(api.submit_rerank(args.queries, args.collection, initial_k=args.initial_k, top_k=args.top_k,
                                     settings=settings), settings=settings)
    assert job.state == "done", job.errors
    raw, piped = pairs / raw_seconds, job.rate("pairs")
    print(json.dumps({"queries": len(queries), "pairs": pairs, "raw_pairs_per_s": round(raw, 1),
                      "job_pairs_per_s": round(piped, 1), "job_over_raw": round(piped / raw, 3),
                      "job_id": job.id, "job_elapsed_s": round(job.elapsed, 2)}, indent=2))


if __name__ == "__main__":
    main()
