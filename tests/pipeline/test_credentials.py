"""The pipeline passes the worker's bearer token and TLS CA through: CROSSRANK_AUTH_TOKEN and
CROSSRANK_TLS_CA reach every call its tasks make. A wrong token fails the job at once, with the
reason in its errors: retrying cannot fix it."""

from __future__ import annotations

import pytest
from support.credentials import write_self_signed_certificate
from support.pipeline import CORPUS, QUERIES, Pipeline, base_env, flush_db, start_celery
from support.workers import serving_worker

from crossrank import pipeline

pytestmark = pytest.mark.slow  # end to end, with real processes: `pytest -m 'not slow'` skips it

TOKEN = "pipeline-s3cret"


@pytest.fixture(scope="module")
def secured_worker(tiny_cross_encoder, tiny_bi_encoder, tmp_path_factory):
    cert, key = write_self_signed_certificate(tmp_path_factory.mktemp("tls"))
    with serving_worker(tiny_cross_encoder, tiny_bi_encoder, "--auth-token", TOKEN, "--tls-cert", str(cert),
                        "--tls-key", str(key), ca_cert=cert) as process:
        yield process, cert


def _pipeline(redis_db, worker, tmp_path, token: str) -> Pipeline:
    process, cert = worker
    env = base_env(CROSSRANK_REDIS_URL=redis_db, CROSSRANK_CHROMA_PATH=str(tmp_path / "chroma"),
                   CROSSRANK_WORKER_TARGET=process.address, CROSSRANK_AUTH_TOKEN=token, CROSSRANK_TLS_CA=str(cert))
    flush_db()
    return Pipeline(env, start_celery(env, tmp_path))


def test_jobs_reach_a_worker_that_wants_a_token_over_tls(redis_db, secured_worker, tmp_path):
    p = _pipeline(redis_db, secured_worker, tmp_path, TOKEN)
    try:
        index = pipeline.wait(pipeline.submit_index(CORPUS, "secured", settings=p.settings), timeout=240,
                              settings=p.settings)
        assert index.state == "done" and index.counts["indexed"] == len(CORPUS), index.errors
        rerank = pipeline.wait(pipeline.submit_rerank(QUERIES, "secured", initial_k=5, top_k=2, settings=p.settings),
                               timeout=240, settings=p.settings)
        assert rerank.state == "done" and rerank.counts["records"] == 2 * len(QUERIES), rerank.errors
        # The CLI's search reads the same two variables.
        hits = p.cli_json("search", "什么是RAG技术？", "--collection", "secured", "--top-k", "2")
        assert len(hits) == 2
    finally:
        p.celery.stop()


def test_a_wrong_token_fails_the_job_without_retries(redis_db, secured_worker, tmp_path):
    p = _pipeline(redis_db, secured_worker, tmp_path, "not-the-token")
    try:
        job = pipeline.wait(pipeline.submit_index(CORPUS[:3], "refused", settings=p.settings), timeout=120,
                            settings=p.settings)
        assert job.state == "failed" and job.counts["failed"] == 3
        [error] = job.errors
        assert error["message"].startswith("AuthenticationError") and error["retries"] == 0
        assert p.jobs().stats().get("retries:index", 0) == 0
    finally:
        p.celery.stop()
