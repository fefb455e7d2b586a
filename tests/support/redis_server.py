"""The Redis the tests use: CROSSRANK_TEST_REDIS when set (parallel checkouts each point it at a
server of their own), else a private `redis-server` on a free port, started once per test session
and stopped at exit. Each test area takes a database of its own on it (`redis_url_for(db)`)."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
import time

from crossrank.common.net import free_port

PIPELINE_DB = 11
LOCAL_STACK_DB = 13


@functools.cache
def redis_base() -> str:
    """redis://host:port of the tests' Redis, without a database."""
    given = os.environ.get("CROSSRANK_TEST_REDIS")
    if given:
        return given.rstrip("/")
    server = shutil.which("redis-server")
    if server is None:  # nothing private to start: the tests that need Redis skip when none answers here
        return "redis://127.0.0.1:6379"
    workdir = tempfile.mkdtemp(prefix="crossrank-test-redis-")
    url, proc = start_redis_server(server, workdir)
    atexit.register(_stop, proc, workdir)
    return url


def start_redis_server(server: str, workdir: str) -> tuple[str, subprocess.Popen]:
    """A redis-server without persistence on a free port of 127.0.0.1, once it answers: (url, process)."""
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    _wait_answering(url)
    return url, proc


def redis_url_for(db: int) -> str:
    return f"{redis_base()}/{db}"


def _wait_answering(url: str, timeout: float = 10) -> None:
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with redis.Redis.from_url(url, socket_connect_timeout=0.5) as client:
                client.ping()
                return
        except redis.ConnectionError:
            time.sleep(0.05)


def _stop(proc: subprocess.Popen, workdir: str) -> None:
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(workdir, ignore_errors=True)
