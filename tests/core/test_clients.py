"""What the sync and async clients share: the same deadline on streams as on unary calls, a lazy
async stream that reads async iterables, and a CLI that says at once when no worker listens."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
from support.workers import WorkerProcess, crossrank_command

from crossrank.client import AsyncCrossrankClient, CrossrankClient, DeadlineExceededError
from crossrank.common.net import free_port

# A stream whose caller stops sending for 10 s: with the client's 1 s deadline it ends early.
REQUEST = {"query": "q", "documents": ["a", "b"], "request_id": "r"}


def test_a_stream_has_the_clients_deadline_by_default(worker):
    def requests():
        yield REQUEST
        time.sleep(10)

    with CrossrankClient(worker.address, timeout=1) as client, pytest.raises(DeadlineExceededError):
        list(client.stream(requests()))


def test_an_async_stream_has_the_clients_deadline_by_default(worker):
    async def requests():
        yield REQUEST
        await asyncio.sleep(10)

    async def run() -> None:
        async with AsyncCrossrankClient(worker.address, timeout=1) as client:
            async for _ in client.stream(requests()):
                pass

    with pytest.raises(DeadlineExceededError):
        asyncio.run(run())


def test_the_async_stream_reads_an_async_iterable_as_it_goes(worker):
    async def run() -> list[str]:
        async with AsyncCrossrankClient(worker.address, timeout=60) as client:
            answered = asyncio.Event()

            async def requests():
                yield {"query": "q", "documents": ["a", "b"], "request_id": "first"}
                await answered.wait()  # an eager client would wait here for ever (until its deadline)
                yield {"query": "q", "documents": ["c"], "request_id": "second"}

            seen = []
            async for response in client.stream(requests()):
                seen.append(response.request_id)
                answered.set()
            return seen

    assert asyncio.run(run()) == ["first", "second"]


def test_no_worker_is_one_clear_line_at_once():
    target = f"127.0.0.1:{free_port()}"
    for command in ("info", "rerank"):
        args = ["rerank", "q", "-d", "a"] if command == "rerank" else ["info"]
        result = subprocess.run(crossrank_command(*args, "--target", target), capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 1, result
        assert f"no worker at {target} (start one with `crossrank serve`)" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_wait_for_worker_waits_for_one_to_come_up(tiny_cross_encoder):
    port = free_port()
    waiting = subprocess.Popen(crossrank_command("info", "--json", "--wait-for-worker", "--timeout", "120",
                                                 "--target", f"127.0.0.1:{port}"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = WorkerProcess(tiny_cross_encoder, None, port)
    try:
        out, err = waiting.communicate(timeout=150)
        assert waiting.returncode == 0, err
        assert str(tiny_cross_encoder) in out
    finally:
        waiting.kill()
        worker.stop()
