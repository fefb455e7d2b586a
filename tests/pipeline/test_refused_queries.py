"""A job's queries that the worker refuses when full are sent again, not failed: the worker holds its
model while interactive work fills the queue, the retriever's bulk query is refused, and once the
model runs again the resent query is ranked like any other."""

from __future__ import annotations

import logging
import threading
import time

from support.pipeline import wait_for
from support.workers import worker_in_process

from crossrank.client import CrossrankClient
from crossrank.pipeline.search import TwoStageRetriever
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import open_chroma, open_collection
from crossrank.worker.engine import RerankQuery
from crossrank.worker.errors import NotReadyError

PASSAGES = [f"passage {i} about the capital of france and its river" for i in range(8)]


def fill_with_interactive(engine) -> list:
    """Interactive requests of 2 pairs until the held model's pipeline is full (its batches collated
    ahead) and at least 8 pairs wait: should the scheduler form one more batch, 6 still do, and a bulk
    query of 8 no longer fits the queue of 12."""
    batcher, live = engine._score_batcher, []
    for _ in range(100):
        if batcher.batches_waiting("forward") == batcher.ahead and batcher.pending_pairs(0) >= 8:
            return live
        if batcher.pending_pairs(0) < 8:
            live.append(engine.submit_rerank(RerankQuery("q", ["live document"] * 2)))
            wait_for(lambda: engine._tokenizing.total() == 0, 30, "the request tokenized")
        else:
            time.sleep(0.01)
    raise AssertionError("the held worker's queue never filled")


def test_a_refused_bulk_query_is_sent_again_and_ranked(tiny_cross_encoder, tiny_bi_encoder, tmp_path, caplog):
    chroma = open_chroma(PipelineSettings(chroma_path=str(tmp_path / "chroma")))
    collection = open_collection(chroma, "refused", create=True)
    with (
        worker_in_process(tiny_cross_encoder, tiny_bi_encoder, max_queue_pairs=12, max_batch_pairs=2) as server,
        CrossrankClient(server.address, timeout=60) as client,
    ):
        ids = [f"p{i}" for i in range(len(PASSAGES))]
        collection.add(
            ids=ids,
            embeddings=client.embed(PASSAGES).embeddings,
            documents=PASSAGES,
            metadatas=[{"doc_id": i} for i in ids],
        )
        held = threading.Event()
        runtime = server.engine._score_batcher.runtime
        forward = runtime.forward
        runtime.forward = lambda features: held.wait(60) and forward(features)
        try:
            live = fill_with_interactive(server.engine)
            retriever = TwoStageRetriever(client, collection, priority=10)
            found: list = []
            with caplog.at_level(logging.INFO, logger="crossrank.pipeline.search"):
                searching = threading.Thread(
                    target=lambda: found.extend(retriever.search_many(["capital of france"], initial_k=8, top_k=3))
                )
                searching.start()
                wait_for(
                    lambda: "worker full: 1 queries refused at priority 10" in caplog.text, 30, "the bulk query refused"
                )
                held.set()
                searching.join(60)
        finally:
            held.set()
        assert all(len(r.result().results) == 2 for r in live)
    [result] = found
    assert result.error is None and [h.rank for h in result.hits] == [1, 2, 3]
    assert {h.passage_id for h in result.hits} <= set(ids)


def test_a_query_whose_engine_core_restarted_is_sent_again(tiny_cross_encoder, tiny_bi_encoder, tmp_path, caplog):
    """A split worker answers a query UNAVAILABLE when its engine core dies under it (`CoreQueue`): a job's
    retriever sends that query again, as it does a refused one, instead of counting it failed."""
    chroma = open_chroma(PipelineSettings(chroma_path=str(tmp_path / "chroma")))
    collection = open_collection(chroma, "restarted", create=True)
    with (
        worker_in_process(tiny_cross_encoder, tiny_bi_encoder) as server,
        CrossrankClient(server.address, timeout=60) as client,
    ):
        ids = [f"p{i}" for i in range(len(PASSAGES))]
        collection.add(ids=ids, embeddings=client.embed(PASSAGES).embeddings, documents=PASSAGES,
                       metadatas=[{"doc_id": i} for i in ids])
        batcher = server.engine._score_batcher
        submit, failed = batcher.submit, []

        def core_stops_once(ticket):
            if failed:
                return submit(ticket)
            failed.append(ticket)
            ticket.fail(NotReadyError("the engine core stopped; retry shortly"))  # as CoreQueue fails it
            return ticket

        batcher.submit = core_stops_once
        with caplog.at_level(logging.INFO, logger="crossrank.pipeline.search"):
            [result] = TwoStageRetriever(client, collection, priority=10).search_many(
                ["capital of france"], initial_k=8, top_k=3)
    assert len(failed) == 1
    assert "worker restarting: 1 queries refused at priority 10" in caplog.text
    assert result.error is None and [h.rank for h in result.hits] == [1, 2, 3]
