"""Both SDK clients behind one blocking interface, so one test body checks the sync and the async one.

    @pytest.fixture(params=CLIENT_KINDS)
    def client(request, worker):
        with open_client(request.param, worker.address) as c:
            yield c
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from crossrank.client import AsyncCrossrankClient, CrossrankClient

CLIENT_KINDS = ("sync", "async")


class BlockingAsyncClient:
    """AsyncCrossrankClient with every call run to completion on an event loop of its own thread."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.client = AsyncCrossrankClient(*args, **kwargs)

    def _run(self, coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Callable:
        method = getattr(self.client, name)
        if name == "stream":
            return lambda *args, **kwargs: iter(self._run(_collect(method(*args, **kwargs))))
        return lambda *args, **kwargs: self._run(method(*args, **kwargs))

    def close(self) -> None:
        self._run(self.client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> BlockingAsyncClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


async def _collect(stream) -> list:
    return [item async for item in stream]


def open_client(kind: str, *args: Any, **kwargs: Any) -> CrossrankClient | BlockingAsyncClient:
    """A sync client, or the async one behind the same interface."""
    return CrossrankClient(*args, **kwargs) if kind == "sync" else BlockingAsyncClient(*args, **kwargs)
