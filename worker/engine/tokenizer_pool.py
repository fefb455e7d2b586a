"""The tokenize stage's threads: the most urgent request is tokenized first.

A first-come pool would make a live query wait behind every bulk request already handed to the
tokenizers (a RerankStream keeps dozens in flight), before the batcher's priorities can help it.
Here each task carries its request's priority (lower is sooner, as everywhere in the engine) and
the threads take the lowest first, in arrival order within one priority. Each thread prepares
its own tokenizer copies before it takes any work (a 250k-vocabulary copy takes about 0.75 s),
and `start` returns only once every thread has.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Sequence

from crossrank.worker.thread_names import NamedThread

_STOP = float("inf")  # sorts after every real priority: the threads finish queued work, then stop


class TokenizerPool:
    def __init__(self, workers: int, name: str = "tokenize"):
        self.workers = workers
        self._name = name
        self._tasks: queue.PriorityQueue[tuple[float, int, Callable[[], None] | None]] = queue.PriorityQueue()
        self._order = itertools.count()  # arrival order within one priority
        self._threads: list[threading.Thread] = []
        self._closed = False

    def start(self, prepare: Sequence[Callable[[], None]] = (), timeout: float = 600) -> None:
        """Start the threads; each runs `prepare` (its tokenizer copies) before its first task."""
        ready = threading.Barrier(self.workers + 1)
        for k in range(self.workers):
            thread = NamedThread(target=self._run, args=(prepare, ready), name=f"{self._name}-{k}", daemon=True)
            thread.start()
            self._threads.append(thread)
        ready.wait(timeout)

    def submit(self, priority: int, task: Callable[[], None]) -> None:
        """Run `task` on a tokenizer thread; raises RuntimeError once the pool is shut down."""
        if self._closed:
            raise RuntimeError("the tokenizer pool is shut down")
        self._tasks.put((priority, next(self._order), task))

    def shutdown(self) -> None:
        """Stop taking work; queued tasks still run (each ends its request), then the threads exit."""
        self._closed = True
        for _ in self._threads:
            self._tasks.put((_STOP, next(self._order), None))

    def _run(self, prepare: Sequence[Callable[[], None]], ready: threading.Barrier) -> None:
        for step in prepare:
            step()
        ready.wait()
        while (task := self._tasks.get()[2]) is not None:
            task()
