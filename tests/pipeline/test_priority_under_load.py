"""A rerank job under a full interactive load: the worker refuses the job's bulk requests first and
never an interactive one; the job resends what was refused, slows down, and ends with exact records.

The worker's queue holds 20 pairs: three interactive callers keep up to 18 queued, so a bulk query
(8 pairs) fits only while 12 or fewer are. Without priorities the job's queries would as often make
the interactive callers' requests the ones refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from support.faults import COLLECTION, INITIAL_K, QUERY_RECORDS, TOP_K, assert_exact, index_corpus
from support.pipeline import Pipeline, base_env, flush_db, start_celery
from support.workers import serving_worker

from crossrank import pipeline
from crossrank.client import CrossrankClient, OverloadedError

pytestmark = pytest.mark.slow

LIVE_QUERY = "capital of france"
LIVE_DOCS = [f"document {i} about paris and berlin" for i in range(6)]
LIVE_CALLERS = 3
# Each caller waits this long between its calls: the live load leaves the job some room, as live users
# do. Without it the callers would take every batch, and the job, which never ages, would wait them out.
LIVE_PAUSE_S = 0.02


@pytest.fixture(scope="module")
def small_queue_worker(tiny_cross_encoder, tiny_bi_encoder) -> Iterator:
    with serving_worker(
        tiny_cross_encoder, tiny_bi_encoder, "--max-queue-pairs", "20", "--max-batch-pairs", "2"
    ) as process:
        yield process


@pytest.fixture
def loaded_pipeline(redis_db, small_queue_worker, tmp_path) -> Iterator[Pipeline]:
    env = base_env(
        CROSSRANK_REDIS_URL=redis_db,
        CROSSRANK_CHROMA_PATH=str(tmp_path / "chroma"),
        CROSSRANK_WORKER_TARGET=small_queue_worker.address,
        CROSSRANK_RERANK_CHUNK_SIZE="1",
        CROSSRANK_TIMEOUT="120",
    )
    flush_db()
    worker = start_celery(env, tmp_path)
    try:
        yield Pipeline(env, worker)
    finally:
        worker.stop()


def test_a_job_under_interactive_load_ends_exact_and_never_refuses_interactive(loaded_pipeline, small_queue_worker):
    p = loaded_pipeline
    index_corpus(p)
    stop = threading.Event()
    answered, refused = [], []

    def live_caller() -> None:
        with CrossrankClient(small_queue_worker.address, timeout=60) as client:
            while not stop.is_set():
                try:
                    answered.append(len(client.rerank(LIVE_QUERY, LIVE_DOCS).results))
                except OverloadedError as exc:
                    refused.append(exc)
                stop.wait(LIVE_PAUSE_S)

    callers = [threading.Thread(target=live_caller) for _ in range(LIVE_CALLERS)]
    for caller in callers:
        caller.start()
    try:
        job_id = pipeline.submit_rerank(
            QUERY_RECORDS, COLLECTION, initial_k=INITIAL_K, top_k=TOP_K, settings=p.settings
        )
        assert_exact(p, job_id, timeout=600)
    finally:
        stop.set()
        for caller in callers:
            caller.join(120)
    assert not refused, f"interactive requests were refused behind the job: {refused[0]}"
    assert answered and set(answered) == {len(LIVE_DOCS)}
