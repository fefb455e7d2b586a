"""`crossrank demo` keeps to a Redis of its own and leaves nothing behind in the one it finds."""

import os
import re
import subprocess

import pytest
import redis
from support.redis_server import LOCAL_STACK_DB, redis_base, redis_url_for
from support.workers import crossrank_command


@pytest.mark.slow
def test_without_redis_server_the_demo_borrows_an_empty_database_and_empties_it(
        tiny_cross_encoder, tiny_bi_encoder, tmp_path):
    found = redis_url_for(LOCAL_STACK_DB)
    with redis.Redis.from_url(found) as client:
        try:
            client.ping()
        except redis.ConnectionError as exc:
            pytest.skip(f"no Redis at {found}: {exc}")
        client.flushdb()
        client.set("someone-else:key", "kept")  # a Redis in use: the demo must not touch this database
    env = {**os.environ, "PATH": str(tmp_path), "HF_HUB_OFFLINE": "1",  # no redis-server to start
           "CROSSRANK_MODEL": str(tiny_cross_encoder), "CROSSRANK_EMBED_MODEL": str(tiny_bi_encoder),
           "CROSSRANK_REDIS_URL": found, "CROSSRANK_DEVICE": "cpu", "COLUMNS": "120"}
    try:
        result = subprocess.run(crossrank_command("demo"), env=env, capture_output=True, text=True, timeout=600,
                                cwd=tmp_path)
        assert result.returncode == 0, result.stderr + result.stdout
        assert "The demo stack stops now" in result.stdout
        db = int(re.search(r"the demo uses the empty database (\d+) of the Redis at", result.stderr)[1])
        assert db != LOCAL_STACK_DB
        with redis.Redis.from_url(f"{redis_base()}/{db}") as borrowed:
            assert borrowed.dbsize() == 0  # its jobs and Celery's queues are gone
        with redis.Redis.from_url(found) as client:
            assert client.keys() == [b"someone-else:key"]
    finally:
        with redis.Redis.from_url(found) as client:
            client.flushdb()
    assert not (tmp_path / "data").exists()  # its Chroma lived in its own folder, removed with it
