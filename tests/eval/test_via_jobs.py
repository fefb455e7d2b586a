"""`--via-jobs`: the pipeline's own index and rerank jobs (real Redis, a real Celery worker) give the
same rankings and metrics as the online path."""

from __future__ import annotations

import json

import pytest
from support.evaluation import run_eval
from support.pipeline import REDIS_URL, base_env, flush_db, redis_client, start_celery

pytestmark = pytest.mark.slow


@pytest.fixture
def pipeline_env(worker, tmp_path):
    import redis

    client = redis_client()
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    finally:
        client.close()
    flush_db()
    env = base_env(CROSSRANK_REDIS_URL=REDIS_URL, CROSSRANK_CHROMA_PATH=str(tmp_path / "chroma"),
                   CROSSRANK_WORKER_TARGET=worker.address)
    celery = start_celery(env, tmp_path)
    try:
        yield env
    finally:
        celery.stop()
        flush_db()


def test_offline_and_online_agree(beir, pipeline_env, tmp_path):
    offline = run_eval(str(beir), "--via-jobs", "--first-stage", "dense", "--sweep", "initial_k=3,5", "--json",
                       env=pipeline_env)
    assert offline.exit_code == 0, offline.output
    online = run_eval(str(beir), "--first-stage", "dense", "--sweep", "initial_k=3,5", "--json", env=pipeline_env)
    assert online.exit_code == 0, online.output
    a, b = json.loads(offline.stdout), json.loads(online.stdout)
    assert a["indexed"] is True and b["indexed"] is False  # the index job built the collection the online run used
    assert a["config"]["via_jobs"] and a["pairs_scored"] == b["pairs_scored"] == 3 * 5
    assert [r["stage"] for r in a["rows"]] == ["dense", "dense+rerank"] * 2
    for row_a, row_b in zip(a["rows"], b["rows"], strict=True):
        assert row_a["rankings"] == row_b["rankings"]
        for q, values in row_a["per_query"].items():
            for metric, value in values.items():
                assert abs(value - row_b["per_query"][q][metric]) <= 1e-6, (row_a["stage"], q, metric)


def test_jobs_search_densely_only(beir):
    result = run_eval(str(beir), "--via-jobs", "--first-stage", "bm25")
    assert result.exit_code == 1 and "--first-stage dense with --via-jobs" in result.output
