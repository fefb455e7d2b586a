"""Job state in real Redis (our test db): chunks counted once, done exactly at the last chunk, cancel, list, metrics."""

import json
import uuid

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from crossrank.pipeline import PipelineSettings
from crossrank.pipeline.jobs import MAX_ERRORS, JobNotFound, JobStore
from crossrank.pipeline.metrics import registry_for


@pytest.fixture
def prefix(redis_db) -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(redis_db, prefix):
    jobs = JobStore.from_settings(PipelineSettings(redis_url=redis_db, key_prefix=prefix))
    yield jobs
    jobs.redis.close()


def test_a_new_job_is_queued(store):
    job_id = store.create("index", "docs", total=10, chunks=3, params={"collection": "docs"},
                          counts={"indexed": 0, "failed": 1}, errors=[{"line": 4, "message": "bad"}])
    job = store.get(job_id)
    assert (job.id, job.kind, job.state, job.collection, job.total, job.done, job.chunks) == (
        job_id, "index", "queued", "docs", 10, 0, 3)
    assert job.counts == {"indexed": 0, "failed": 1}
    assert job.errors == [{"line": 4, "message": "bad"}] and job.error_count == 1
    assert job.params == {"collection": "docs"}
    assert job.started_at is None and job.finished_at is None and job.elapsed == 0.0 and not job.finished


def test_a_chunk_completed_twice_counts_once_and_done_comes_with_the_last_chunk(store):
    job_id = store.create("index", "docs", total=5, chunks=3, params={})
    assert store.start(job_id) == "running"
    assert store.start(job_id) == "running"
    assert store.complete_chunk(job_id, 0, 2, {"indexed": 2, "passages": 3}, kind="index")
    assert not store.complete_chunk(job_id, 0, 2, {"indexed": 2, "passages": 3}, kind="index")  # redelivered
    assert store.get(job_id).state == "running"
    assert store.complete_chunk(job_id, 2, 1, {"indexed": 1, "passages": 1}, kind="index")
    job = store.get(job_id)
    assert (job.state, job.done, job.chunks_done) == ("running", 3, 2)  # chunk 1 is still missing
    assert store.complete_chunk(job_id, 1, 2, {"indexed": 2, "passages": 2}, kind="index")
    job = store.get(job_id)
    assert (job.state, job.done, job.total, job.chunks_done) == ("done", 5, 5, 3)
    assert job.counts == {"indexed": 5, "passages": 6}
    assert job.finished and job.finished_at >= job.started_at
    assert not store.complete_chunk(job_id, 1, 2, {"indexed": 2, "passages": 2}, kind="index")
    assert store.get(job_id).counts == {"indexed": 5, "passages": 6}
    assert store.stats() == {"chunks:index:ok": 3}


def test_a_failed_chunk_makes_the_job_failed(store):
    job_id = store.create("rerank", "docs", total=4, chunks=2, params={})
    store.start(job_id)
    assert store.complete_chunk(job_id, 0, 2, {"failed": 2}, failed=True, kind="rerank")
    assert store.get(job_id).state == "running"
    assert store.complete_chunk(job_id, 1, 2, {"queries": 2}, kind="rerank")
    job = store.get(job_id)
    assert job.state == "failed" and job.counts == {"failed": 2, "queries": 2} and job.done == 4
    assert store.stats() == {"chunks:rerank:failed": 1, "chunks:rerank:ok": 1}


def test_a_job_without_chunks_is_done_on_arrival(store):
    job = store.get(store.create("index", "docs", total=0, chunks=0, params={}))
    assert job.state == "done" and job.finished


def test_cancel_stops_queued_and_running_jobs_only(store):
    queued = store.create("index", "docs", total=2, chunks=1, params={})
    assert store.cancel(queued).state == "cancelled"
    assert store.start(queued) == "cancelled"  # a chunk arriving later does not revive it
    store.complete_chunk(queued, 0, 2, {"indexed": 2})
    assert store.get(queued).state == "cancelled"

    running = store.create("index", "docs", total=2, chunks=2, params={})
    store.start(running)
    assert store.cancel(running).state == "cancelled"

    done = store.create("index", "docs", total=1, chunks=1, params={})
    store.complete_chunk(done, 0, 1, {"indexed": 1})
    assert store.cancel(done).state == "done"

    with pytest.raises(JobNotFound, match="nosuchjob"):
        store.cancel("nosuchjob")


def test_unknown_jobs_and_chunks_of_deleted_jobs(store):
    with pytest.raises(JobNotFound) as caught:
        store.get("nosuchjob")
    assert "nosuchjob" in str(caught.value) and "CROSSRANK_REDIS_URL" in str(caught.value)
    job_id = store.create("index", "docs", total=1, chunks=1, params={})
    store.redis.delete(f"{store.prefix}:job:{job_id}")  # expired
    assert store.state(job_id) is None
    assert not store.complete_chunk(job_id, 0, 1, {"indexed": 1})  # the job is gone: nothing is created
    assert store.state(job_id) is None and store.list() == []  # and the index entry went with it


def test_list_gives_the_most_recent_first(store):
    ids = [store.create("index", f"docs-{i}", total=1, chunks=1, params={}) for i in range(5)]
    assert [j.id for j in store.list()] == ids[::-1]
    assert [j.id for j in store.list(limit=2)] == ids[:2:-1]
    store.redis.delete(f"{store.prefix}:job:{ids[4]}")  # expired under the index
    assert [j.id for j in store.list()] == ids[3::-1]


def test_errors_are_capped_and_counted(store):
    job_id = store.create("index", "docs", total=1, chunks=1, params={})
    for i in range(MAX_ERRORS + 5):
        store.add_error(job_id, {"line": i + 1, "message": "第一行错误" if i == 0 else "bad"})
    job = store.get(job_id)
    assert job.error_count == MAX_ERRORS + 5
    assert len(job.errors) == MAX_ERRORS
    assert job.errors[0] == {"line": 1, "message": "第一行错误"}  # the first errors are the ones kept
    assert json.loads(json.dumps(job.as_dict()))["error_count"] == MAX_ERRORS + 5


def test_status_dict_has_throughput_per_kind(store):
    index = store.create("index", "docs", total=3, chunks=1, params={})
    store.start(index)
    store.complete_chunk(index, 0, 3, {"indexed": 3, "passages": 6})
    rerank = store.create("rerank", "docs", total=2, chunks=1, params={"initial_k": 10, "top_k": 3})
    store.start(rerank)
    store.complete_chunk(rerank, 0, 2, {"queries": 2, "pairs": 20, "records": 6})
    as_index, as_rerank = store.get(index).as_dict(), store.get(rerank).as_dict()
    assert as_index["progress"] == {"done": 3, "total": 3}
    assert set(as_index["throughput"]) == {"documents_per_s", "passages_per_s"}
    assert set(as_rerank["throughput"]) == {"queries_per_s", "pairs_per_s"}
    job = store.get(rerank)
    assert job.elapsed > 0 and job.rate("queries") == pytest.approx(2 / job.elapsed)
    assert job.rate("pairs") == pytest.approx(10 * job.rate("queries"))  # both over the same running time


def test_failed_items_are_not_throughput(store):
    job_id = store.create("rerank", "docs", total=4, chunks=2, params={})
    store.start(job_id)
    store.complete_chunk(job_id, 0, 2, {"queries": 2, "pairs": 20})
    store.complete_chunk(job_id, 1, 2, {"failed": 2}, failed=True)
    job = store.get(job_id)
    assert job.state == "failed" and job.done == 4
    assert job.rate("queries") == pytest.approx(2 / job.elapsed)


def _samples(settings) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry_for(settings)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_are_read_from_redis(store, redis_db, prefix):
    settings = PipelineSettings.from_env({}, redis_url=redis_db, key_prefix=prefix)
    before = _samples(settings)
    assert before[("crossrank_pipeline_jobs", (("kind", "index"), ("state", "queued")))] == 0
    assert before[("crossrank_pipeline_chunks_total", (("kind", "rerank"), ("outcome", "ok")))] == 0

    done = store.create("index", "docs", total=2, chunks=2, params={})
    store.complete_chunk(done, 0, 1, {"indexed": 1}, kind="index")
    store.complete_chunk(done, 1, 1, {"failed": 1}, failed=True, kind="index")
    store.create("index", "docs", total=1, chunks=1, params={})
    rerank = store.create("rerank", "docs", total=1, chunks=1, params={})
    store.cancel(rerank)
    store.note_retry("index")
    store.note_retry("index")

    after = _samples(settings)
    assert after[("crossrank_pipeline_jobs", (("kind", "index"), ("state", "failed")))] == 1
    assert after[("crossrank_pipeline_jobs", (("kind", "index"), ("state", "queued")))] == 1
    assert after[("crossrank_pipeline_jobs", (("kind", "rerank"), ("state", "cancelled")))] == 1
    assert after[("crossrank_pipeline_jobs", (("kind", "index"), ("state", "done")))] == 0
    assert after[("crossrank_pipeline_chunks_total", (("kind", "index"), ("outcome", "ok")))] == 1
    assert after[("crossrank_pipeline_chunks_total", (("kind", "index"), ("outcome", "failed")))] == 1
    assert after[("crossrank_pipeline_retries_total", (("kind", "index"),))] == 2
    assert after[("crossrank_pipeline_retries_total", (("kind", "rerank"),))] == 0
    assert sum(v for (name, _), v in after.items() if name == "crossrank_pipeline_jobs") == 3


def _aged(store, job_id: str, chunk: int, seconds: float) -> None:
    """The owner of `chunk` last beat `seconds` ago."""
    key = f"{store.prefix}:job:{job_id}:owners"
    entry = json.loads(store.redis.hget(key, str(chunk)))
    store.redis.hset(key, str(chunk), json.dumps({**entry, "at": entry["at"] - seconds}))


def test_a_silent_owner_makes_the_job_stalled_and_its_chunk_is_claimed_once(redis_db, prefix):
    store = JobStore.from_settings(PipelineSettings(redis_url=redis_db, key_prefix=prefix, stall_seconds=5))
    messages = [{"job_id": "j", "chunk": n, "items": [n]} for n in range(3)]
    job_id = store.create("index", "docs", total=3, chunks=3, params={}, payloads=messages)
    assert store.start(job_id, 0, "celery@a pid 1") == "running"
    assert store.start(job_id, 1, "celery@b pid 2") == "running"
    assert store.active() == [job_id]
    assert store.beat(job_id, 0, "celery@a pid 1") and not store.beat(job_id, 0, "celery@b pid 2")
    assert store.get(job_id).state == "running" and store.claim_stalled(job_id, "x") == []

    _aged(store, job_id, 1, 6)
    job = store.get(job_id)
    assert job.state == "stalled" and not job.finished
    assert job.stalled.startswith("chunk 1: no heartbeat from celery@b pid 2 for 6s")
    assert f"crossrank jobs resume {job_id}" in job.stalled
    assert store.claim_stalled(job_id, "watchdog 1") == [messages[1]]
    assert store.claim_stalled(job_id, "watchdog 2") == []  # claimed once
    assert store.get(job_id).state == "running"  # re-enqueued: waits for a new owner
    assert not store.beat(job_id, 1, "celery@b pid 2")  # the old owner, if alive, lost it

    assert store.pending(job_id) == messages
    assert store.complete_chunk(job_id, 1, 1, {"indexed": 1})
    assert store.pending(job_id) == [messages[0], messages[2]]
    store.complete_chunk(job_id, 0, 1, {"indexed": 1})
    store.complete_chunk(job_id, 2, 1, {"indexed": 1})
    assert store.get(job_id).state == "done" and store.pending(job_id) == [] and store.active() == []
    assert store.redis.keys(f"{prefix}:job:{job_id}:*") == [f"{prefix}:job:{job_id}:chunks"]


def test_a_job_nothing_moved_for_a_while_is_stalled(redis_db, prefix):
    store = JobStore.from_settings(PipelineSettings(redis_url=redis_db, key_prefix=prefix, stall_seconds=5))
    job_id = store.create("rerank", "docs", total=2, chunks=2, params={})
    store.start(job_id, 0, "celery@a pid 1")
    store.complete_chunk(job_id, 0, 1, {"queries": 1})
    store.redis.hincrbyfloat(f"{prefix}:job:{job_id}", "touched_at", -6)
    job = store.get(job_id)
    assert job.state == "stalled" and job.stalled.startswith("no chunk started or finished for 6s")
    store.cancel(job_id)
    assert store.get(job_id).state == "cancelled" and store.active() == []


def test_running_chunks_report_progress_that_counting_replaces(redis_db, prefix):
    store = JobStore.from_settings(PipelineSettings(redis_url=redis_db, key_prefix=prefix))
    job_id = store.create("rerank", "docs", total=10, chunks=2, params={}, counts={"queries": 0, "pairs": 0})
    store.start(job_id, 0, "o")
    store.progress(job_id, 0, {"items": 2, "queries": 2, "pairs": 40})
    store.progress(job_id, 0, {"items": 3, "queries": 3, "pairs": 60})  # replaces, never adds
    store.progress(job_id, 1, {"items": 1, "queries": 1, "pairs": 20})
    job = store.get(job_id)
    assert (job.done, job.progress, job.in_flight) == (0, 4, {"items": 4, "queries": 4, "pairs": 80})
    assert job.rate("pairs") > 0
    store.complete_chunk(job_id, 0, 5, {"queries": 5, "pairs": 100})
    job = store.get(job_id)
    assert (job.done, job.progress, job.counts["pairs"]) == (5, 6, 100)
    assert job.as_dict()["in_flight"] == {"items": 1, "queries": 1, "pairs": 20}


def test_a_rerank_chunk_shows_its_progress_per_query(redis_db, prefix):
    from crossrank.pipeline.bookkeeping import ChunkProgress
    from crossrank.pipeline.chunks import RerankChunk
    from crossrank.pipeline.documents import Query
    from crossrank.pipeline.search import SearchResult

    store = JobStore.from_settings(PipelineSettings(redis_url=redis_db, key_prefix=prefix))
    job_id = store.create("rerank", "docs", total=3, chunks=1, params={}, counts={"queries": 0, "pairs": 0})
    store.start(job_id, 0, "o")
    progress = ChunkProgress(store, RerankChunk(job_id, 0, "docs", "docs-results", 8, 3,
                                                [Query(f"q{i}", "text") for i in range(3)]))
    progress(SearchResult("text", [], pairs=8))
    job = store.get(job_id)
    assert (job.done, job.progress, job.in_flight) == (0, 1, {"items": 1, "queries": 1, "pairs": 8})
    progress(SearchResult("text", [], error=ValueError("refused")))  # a failed query: an item, no pairs
    assert progress.so_far == {"items": 2, "queries": 1, "pairs": 8}
