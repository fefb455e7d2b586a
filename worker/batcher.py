"""Dynamic batching: one bounded queue per model, one thread forming batches, one running them.

Callers (gRPC threads) tokenize their own request and `submit` its inputs as a Ticket.
The former thread drops the inputs of cancelled tickets, sorts a window of pending inputs
by length, and fills a batch around the oldest input up to a token budget, so similar
lengths share a batch and nothing waits forever. It pads the batch into tensors while the
runner thread runs the previous one. The runner scatters each output back to the slot of
the ticket that owns it; a ticket completes when its last slot is filled.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from crossrank.worker.errors import CancelledError, OverloadedError
from crossrank.worker.pairs import Encoded

log = logging.getLogger(__name__)


class Runtime(Protocol):
    """A model as the batcher sees it."""

    def collate(self, items: Sequence[Encoded]) -> Any: ...

    def forward(self, batch: Any) -> np.ndarray: ...


class BatchObserver(Protocol):
    def batch_formed(self, pairs: int, tokens: int, padded_tokens: int, queue_depth: int) -> None: ...

    def batch_done(self, pairs: int, seconds: float) -> None: ...

    def dropped(self, pairs: int) -> None: ...


class _NullObserver:
    def batch_formed(self, pairs: int, tokens: int, padded_tokens: int, queue_depth: int) -> None:
        pass

    def batch_done(self, pairs: int, seconds: float) -> None:
        pass

    def dropped(self, pairs: int) -> None:
        pass


@dataclass
class Ticket:
    """One request's inputs in flight; outputs land in `outputs` in input order."""

    items: list[Encoded]
    outputs: list[Any] = field(default_factory=list)
    on_done: Callable[[Ticket], None] | None = None
    submitted: float = field(default_factory=time.perf_counter)
    started: float | None = None
    finished: float | None = None
    error: BaseException | None = None
    _remaining: int = 0
    _cancelled: bool = False
    _done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.outputs = [None] * len(self.items)
        self._remaining = len(self.items)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def tokens(self) -> int:
        return sum(item.length for item in self.items)

    def cancel(self) -> None:
        """Drop whatever has not been computed yet; safe to call at any time, more than once."""
        if not self._done.is_set():
            self._cancelled = True
            self._finish(CancelledError("request cancelled"))

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> list[Any]:
        if not self._done.wait(timeout):
            raise TimeoutError("request did not finish in time")
        if self.error is not None:
            raise self.error
        return self.outputs

    def _started(self, now: float) -> None:
        if self.started is None:
            self.started = now

    def _fill(self, slot: int, value: Any) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.outputs[slot] = value
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.error = error
            self.finished = time.perf_counter()
            self._done.set()
        if self.on_done is not None:
            try:
                self.on_done(self)
            except Exception:  # a broken callback must not take the batcher down
                log.exception("ticket callback failed")


@dataclass
class _Slot:
    ticket: Ticket
    index: int
    seq: int

    @property
    def length(self) -> int:
        return self.ticket.items[self.index].length


def pick_batch(lengths: Sequence[int], oldest: int, max_tokens: int, max_pairs: int) -> list[int]:
    """Positions of a batch that holds `oldest` and its nearest neighbours by length.

    `lengths` is sorted ascending. The padded cost of a batch is its longest input times its
    size; neighbours are added, closest length first, while that cost fits `max_tokens`.
    """
    chosen = [oldest]
    longest = lengths[oldest]
    lo, hi = oldest - 1, oldest + 1
    while len(chosen) < max_pairs and (lo >= 0 or hi < len(lengths)):
        take_hi = lo < 0 or (hi < len(lengths) and lengths[hi] - lengths[oldest] <= lengths[oldest] - lengths[lo])
        pos = hi if take_hi else lo
        cost = max(longest, lengths[pos]) * (len(chosen) + 1)
        if cost > max_tokens:
            if take_hi:
                hi = len(lengths)  # every longer input costs more still
                continue
            break  # a shorter input did not fit: the batch is full
        chosen.append(pos)
        longest = max(longest, lengths[pos])
        if take_hi:
            hi += 1
        else:
            lo -= 1
    return chosen


class Batcher:
    def __init__(
        self,
        runtime: Runtime,
        *,
        max_batch_tokens: int,
        max_batch_pairs: int,
        max_queue_pairs: int,
        sort_window: int = 1024,
        observer: BatchObserver | None = None,
        name: str = "model",
    ):
        self.runtime = runtime
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_pairs = max_batch_pairs
        self.max_queue_pairs = max_queue_pairs
        self.sort_window = sort_window
        self.observer = observer or _NullObserver()
        self.name = name
        self._pending: list[_Slot] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._ready: queue.Queue[tuple[list[_Slot], Any] | None] = queue.Queue(maxsize=1)
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._form_loop, name=f"{name}-batcher", daemon=True),
            threading.Thread(target=self._run_loop, name=f"{name}-inference", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def submit(self, ticket: Ticket) -> Ticket:
        """Queue a ticket's inputs, or refuse the whole ticket at once when the queue is full."""
        n = len(ticket.items)
        if n == 0:
            ticket._finish(None)
            return ticket
        with self._cond:
            if self._stopping:
                raise OverloadedError("worker is shutting down")
            if len(self._pending) + n > self.max_queue_pairs:
                raise OverloadedError(
                    f"queue full: {len(self._pending)} pairs waiting, this request adds {n}, "
                    f"limit {self.max_queue_pairs}; retry with backoff or use another worker"
                )
            for i in range(n):
                self._pending.append(_Slot(ticket, i, self._seq))
                self._seq += 1
            self._cond.notify()
        return ticket

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            leftovers, self._pending = self._pending, []
            self._cond.notify_all()
        for slot in leftovers:
            slot.ticket._finish(OverloadedError("worker stopped before this request was scored"))
        for thread in self._threads:
            thread.join(timeout=10)

    def _next_batch(self) -> list[_Slot] | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                live = [s for s in self._pending if not s.ticket.done]
                if len(live) != len(self._pending):
                    self.observer.dropped(len(self._pending) - len(live))
                    self._pending = live
                if live:
                    break
                self._cond.wait()
            window = self._pending[: self.sort_window]  # oldest first
            order = sorted(range(len(window)), key=lambda i: window[i].length)
            oldest_pos = order.index(0)
            picked = pick_batch(
                [window[i].length for i in order], oldest_pos, self.max_batch_tokens, self.max_batch_pairs
            )
            taken = {order[p] for p in picked}
            batch = [window[i] for i in sorted(taken, key=lambda i: window[i].length)]
            self._pending = [s for i, s in enumerate(window) if i not in taken] + self._pending[len(window):]
            depth = len(self._pending)
        tokens = sum(s.length for s in batch)
        self.observer.batch_formed(len(batch), tokens, max(s.length for s in batch) * len(batch), depth)
        return batch

    def _form_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                self._ready.put(None)
                return
            try:
                features = self.runtime.collate([s.ticket.items[s.index] for s in batch])
            except Exception as exc:  # a bad input fails its batch, never the worker
                log.exception("%s: collating a batch failed", self.name)
                self._fail(batch, exc)
                continue
            self._ready.put((batch, features))

    def _run_loop(self) -> None:
        while True:
            job = self._ready.get()
            if job is None:
                return
            batch, features = job
            live = [s for s in batch if not s.ticket.done]
            if not live:
                self.observer.dropped(len(batch))
                continue
            start = time.perf_counter()
            for slot in live:
                slot.ticket._started(start)
            try:
                outputs = self.runtime.forward(features)
            except Exception as exc:
                log.exception("%s: inference failed on a batch of %d", self.name, len(batch))
                self._fail(batch, exc)
                continue
            self.observer.batch_done(len(batch), time.perf_counter() - start)
            for row, slot in enumerate(batch):
                slot.ticket._fill(slot.index, outputs[row])

    @staticmethod
    def _fail(batch: list[_Slot], exc: Exception) -> None:
        for slot in batch:
            slot.ticket._finish(RuntimeError(f"inference failed: {type(exc).__name__}: {exc}"))
