"""Clients in other languages (grpcurl, Node) often send no deadline; the worker must still answer.

gRPC reports "no deadline" as a remaining time too large for a thread wait; this once made
every such call fail with INTERNAL.
"""

from __future__ import annotations

import grpc

from crossrank.protos import pb, pb_grpc


def test_rerank_and_score_without_a_deadline(worker):
    with grpc.insecure_channel(worker.address) as channel:
        stub = pb_grpc.RerankerStub(channel)
        ranked = stub.Rerank(pb.RerankRequest(query="capital of france", documents=["paris", "berlin"]))
        pair = pb.ScorePair(query="capital of france", document="paris")
        scored = stub.Score(pb.ScoreRequest(pairs=[pair]))
    assert len(ranked.results) == 2
    assert len(scored.scores) == 1
