"""A chunk whose job state cannot be written, Redis gone for longer than the client's retries, is rejected
back to its queue: never failed, which Celery would acknowledge, losing a chunk that was never counted."""

from __future__ import annotations

import pytest
import redis
from celery.exceptions import Reject
from redis.backoff import NoBackoff
from redis.retry import Retry

from crossrank.pipeline.chunks import IndexChunk
from crossrank.pipeline.jobs import JobStore
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.tasks import Resources, index_chunk, run_chunk


def _resources(redis_server) -> Resources:
    """Job state on `redis_server`, through a client that gives up after one retry."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True, retry=Retry(NoBackoff(), 1))
    return Resources(PipelineSettings(redis_url=redis_server.url), JobStore(client, "t"), client=None, chroma=None)


def test_a_chunk_that_cannot_start_goes_back_to_its_queue(redis_server):
    r = _resources(redis_server)
    job_id = r.jobs.create("index", "docs", total=1, chunks=1, params={})
    redis_server.kill()
    with pytest.raises(Reject) as caught:
        run_chunk(index_chunk, r, IndexChunk(job_id, 0, "docs", 100, 10, []), "index", lambda r, c: {"indexed": 1})
    assert caught.value.requeue


def test_a_chunk_done_while_redis_is_away_goes_back_to_its_queue_uncounted(redis_server):
    r = _resources(redis_server)
    job_id = r.jobs.create("index", "docs", total=1, chunks=1, params={}, job_id="j1",
                           payloads=[IndexChunk("j1", 0, "docs", 100, 10, []).to_message()])

    def work(r, chunk) -> dict:
        redis_server.kill()  # the work is done; counting it fails
        return {"indexed": 1}

    with pytest.raises(Reject) as caught:
        run_chunk(index_chunk, r, IndexChunk(job_id, 0, "docs", 100, 10, []), "index", work)
    assert caught.value.requeue
    redis_server.start()  # AOF: everything written before the kill is back
    job = r.jobs.get(job_id)
    assert (job.state, job.done, job.chunks_done) == ("running", 0, 0)
    assert r.jobs.pending(job_id) == [IndexChunk("j1", 0, "docs", 100, 10, []).to_message()]
