"""What the gRPC transport costs per pair, apart from the model: parsing a RerankRequest and turning it
into the engine's query, then building and serializing the RerankResponse.

    .venv/bin/python scripts/grpc_cost.py                    # 100 documents of 600 characters, 200 rounds
    .venv/bin/python scripts/grpc_cost.py --documents 50 --chars 300 --rounds 100

No server and no model: the same convert functions the servicer calls, timed in one thread, so
the figure is the CPU time one request's (de)serialization takes from the worker's host path.
"""

from __future__ import annotations

import argparse
import random
import time

from crossrank.protos import pb
from crossrank.worker.engine import Ranked, RerankOutcome, Usage
from crossrank.worker.grpc import convert


def _per_pair_us(fn, rounds: int, pairs: int) -> float:
    fn()  # warm
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / (rounds * pairs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--chars", type=int, default=600, help="characters per document (152 tokens ~ 600)")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(0)
    words = ["retrieval", "augmented", "generation", "vector", "database", "capital", "france", "paris"]
    docs = [" ".join(rng.choice(words) for _ in range(args.chars // 8))[: args.chars] for _ in range(args.documents)]
    wire = pb.RerankRequest(query="what is retrieval augmented generation", documents=docs,
                            request_id="cost", return_documents=True).SerializeToString()
    query = convert.rerank_query(pb.RerankRequest.FromString(wire))
    outcome = RerankOutcome("cost", [Ranked(i, rng.random()) for i in range(args.documents)],
                            Usage(args.documents, args.documents * 152, 1.0, 2.0), "model", query)
    n, r = args.documents, args.rounds
    parse = _per_pair_us(lambda: convert.rerank_query(pb.RerankRequest.FromString(wire)), r, n)
    respond = _per_pair_us(lambda: convert.rerank_response(outcome).SerializeToString(), r, n)
    bare = dict(outcome.__dict__, query=convert.rerank_query(pb.RerankRequest(query="q", documents=docs)))
    respond_bare = _per_pair_us(lambda: convert.rerank_response(RerankOutcome(**bare)).SerializeToString(), r, n)
    print(f"{n} documents x {args.chars} characters, {r} rounds, one thread:")
    print(f"  parse request + engine query      {parse:6.2f} us/pair")
    print(f"  build + serialize response (docs) {respond:6.2f} us/pair  (return_documents=true)")
    print(f"  build + serialize response        {respond_bare:6.2f} us/pair")
    print(f"  total                             {parse + respond_bare:6.2f} us/pair "
          f"= {1e6 / (parse + respond_bare):,.0f} pairs/s of one core")


if __name__ == "__main__":
    main()
