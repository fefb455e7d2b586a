"""Dynamic batching: schedule and collate, forward, post; three threads joined by bounded queues.

Tokenized requests arrive as Tickets. The scheduling thread drops whatever can no longer be
of use (cancelled, past its deadline, or sure to miss it at the measured rate), then forms
each batch from the oldest requests: it sorts the pending inputs of the requests at the
head of the queue by length and fills a batch around the head request's longest input up to
a token budget. So requests finish roughly in arrival order, and similar lengths still share
a batch. It pads the batch (and, on a GPU, starts its copy to the device) while the forward
thread runs the previous one, up to two batches ahead. The forward thread only launches the
model; the post thread waits for the outputs and scatters them to their tickets, which
complete when their last input is filled.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from crossrank.worker.engine.tokenizer import Tokens
from crossrank.worker.errors import CancelledError, DeadlineError, OverloadedError

log = logging.getLogger(__name__)

class Runtime(Protocol):
    """A model as the scheduler sees it."""

    def collate(self, batch: Batch) -> Any: ...

    def forward(self, batch: Any) -> Any: ...

    def fetch(self, output: Any) -> np.ndarray: ...


class BatchObserver(Protocol):
    def batch_formed(self, pairs: int, tokens: int, padded_tokens: int, queue_depth: int) -> None: ...

    def batch_done(self, pairs: int, seconds: float) -> None: ...

    def dropped(self, pairs: int) -> None: ...


class StageObserver(Protocol):
    def busy(self, stage: str, seconds: float) -> None: ...


class _Null:
    def batch_formed(self, pairs: int, tokens: int, padded_tokens: int, queue_depth: int) -> None:
        pass

    def batch_done(self, pairs: int, seconds: float) -> None:
        pass

    def dropped(self, pairs: int) -> None:
        pass

    def busy(self, stage: str, seconds: float) -> None:
        pass


class Ticket:
    """One request in flight: its tokens once tokenized, and its outputs in input order."""

    def __init__(self, tokens: Tokens | None = None, deadline: float | None = None):
        self.tokens = tokens
        self._callbacks: list[Callable[[Ticket], None]] = []
        self.deadline = deadline  # time.perf_counter() after which no one waits for the result
        self.outputs: np.ndarray | None = None
        self.submitted = time.perf_counter()
        self.started: float | None = None
        self.finished: float | None = None
        self.error: BaseException | None = None
        self._remaining = 0
        self._done = threading.Event()
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def size(self) -> int:
        return len(self.tokens) if self.tokens is not None else 0

    def cancel(self) -> None:
        """Drop whatever has not been computed yet; safe to call at any time, more than once."""
        self._finish(CancelledError("request cancelled"))

    def fail(self, error: BaseException) -> None:
        """End the request with `error` unless it has ended already; what is queued of it is dropped."""
        self._finish(error)

    def add_done_callback(self, callback: Callable[[Ticket], None]) -> None:
        """`callback(self)` when the ticket is done, on the thread that finishes it; at once if it is."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        self._call(callback)

    def _call(self, callback: Callable[[Ticket], None]) -> None:
        try:
            callback(self)
        except Exception:  # a broken callback must not take the scheduler down
            log.exception("ticket callback failed")

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> np.ndarray:
        if not self._done.wait(timeout):
            raise TimeoutError("request did not finish in time")
        if self.error is not None:
            raise self.error
        assert self.outputs is not None
        return self.outputs

    def _fill(self, indexes: np.ndarray, values: np.ndarray) -> None:
        with self._lock:
            if self._done.is_set():
                return
            if self.outputs is None:
                self.outputs = np.zeros((self.size, *values.shape[1:]), dtype=np.float32)
                self._remaining = self.size
            self.outputs[indexes] = values
            self._remaining -= len(indexes)
            last = self._remaining == 0
        if last:
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.error = error
            self.finished = time.perf_counter()
            if error is None and self.outputs is None:  # no inputs at all
                self.outputs = np.zeros(0, dtype=np.float32)
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._call(callback)


@dataclass
class Batch:
    """One forward pass's inputs, grouped by request: the rows are tickets[0]'s inputs[0], then
    tickets[1]'s inputs[1], and so on. Everything per input is an array; nothing is per pair."""

    tickets: list[Ticket]
    inputs: list[np.ndarray]  # per ticket, the indexes of its inputs in this batch
    lengths: np.ndarray  # per row, its tokens

    @classmethod
    def gather(cls, tickets: Sequence[Ticket], owners: np.ndarray, indexes: np.ndarray) -> Batch:
        """Rows given as (owner ticket position, input index) arrays, regrouped by owner."""
        order = np.argsort(owners, kind="stable")
        owners, indexes = owners[order], indexes[order]
        cuts = np.flatnonzero(np.diff(owners)) + 1
        groups = np.split(indexes, cuts)
        chosen = [tickets[int(k)] for k in owners[np.concatenate([[0], cuts])]] if len(owners) else []
        lengths = (np.concatenate([t.tokens.lengths[i] for t, i in zip(chosen, groups, strict=True)])  # type: ignore[union-attr]
                   if chosen else np.zeros(0, dtype=np.int64))
        return cls(chosen, groups if chosen else [], lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def parts(self) -> list[tuple[Tokens, np.ndarray]]:
        """Each request's tokens and the indexes of its inputs here: what `pad` takes."""
        return [(t.tokens, i) for t, i in zip(self.tickets, self.inputs, strict=True)]  # type: ignore[misc]

    @property
    def padded_tokens(self) -> int:
        return int(self.lengths.max()) * len(self.lengths) if len(self.lengths) else 0


@dataclass
class _Entry:
    """A queued ticket and the indexes of its inputs that no batch has taken yet."""

    ticket: Ticket
    todo: np.ndarray


def pick_batch(lengths: Sequence[int], anchor: int, max_tokens: int, max_pairs: int) -> list[int]:
    """Positions of a batch that holds `anchor` and its nearest neighbours by length.

    `lengths` is sorted ascending. The padded cost of a batch is its longest input times its
    size; neighbours are added, closest length first, while that cost fits `max_tokens`.
    """
    chosen = [anchor]
    longest = lengths[anchor]
    lo, hi = anchor - 1, anchor + 1
    while len(chosen) < max_pairs and (lo >= 0 or hi < len(lengths)):
        take_hi = lo < 0 or (hi < len(lengths) and lengths[hi] - lengths[anchor] <= lengths[anchor] - lengths[lo])
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
        sort_window: int = 1024,
        observer: BatchObserver | None = None,
        stages: StageObserver | None = None,
        name: str = "model",
    ):
        self.runtime = runtime
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_pairs = max_batch_pairs
        # The head requests' inputs sorted together: enough for two full batches, at most sort_window.
        self.window_pairs = min(sort_window, 2 * max_batch_pairs)
        self.observer: BatchObserver = observer or _Null()
        self.stages: StageObserver = stages or _Null()
        self.name = name
        self.seconds_per_pair: float | None = None  # forward time per input in full batches, a moving average
        self._pending: deque[_Entry] = deque()
        self._pending_pairs = 0
        # Inputs formed into batches and not yet scored: ahead of every queued request in time.
        self._inflight_pairs = 0
        self._cond = threading.Condition()
        # Each batch travels with whether work was still queued behind it when it was formed.
        self._ready: queue.Queue[tuple[Batch, Any, bool] | None] = queue.Queue(maxsize=2)
        self._done: queue.Queue[tuple[Batch, Any, float, bool] | None] = queue.Queue(maxsize=2)
        self._last_done, self._last_saturated = 0.0, False
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._schedule_loop, name=f"{name}-schedule", daemon=True),
            threading.Thread(target=self._forward_loop, name=f"{name}-forward", daemon=True),
            threading.Thread(target=self._post_loop, name=f"{name}-post", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- what callers see ------------------------------------------------------------------

    def pending_pairs(self) -> int:
        """Inputs waiting for a batch, of requests still wanted: the true queue depth."""
        with self._cond:
            return sum(len(e.todo) for e in self._pending if not e.ticket.done)

    def batches_waiting(self, stage: str) -> int:
        """Formed batches waiting for a stage: "forward" (collated) or "post" (launched, not yet fetched)."""
        return {"forward": self._ready, "post": self._done}[stage].qsize()

    def estimated_wait(self, extra_pairs: int = 0) -> float | None:
        """Seconds until `extra_pairs` more inputs would be computed, at the measured rate; None before any."""
        if self.seconds_per_pair is None:
            return None
        return (self._inflight_pairs + self._pending_pairs + extra_pairs) * self.seconds_per_pair

    def submit(self, ticket: Ticket) -> Ticket:
        """Queue a tokenized ticket's inputs (admission has already checked there is room for them)."""
        n = ticket.size
        if ticket.done:  # cancelled while it was tokenized
            self.observer.dropped(n)
            return ticket
        if n == 0:
            ticket._finish(None)
            return ticket
        with self._cond:
            if self._stopping:
                raise OverloadedError("worker is shutting down")
            self._pending.append(_Entry(ticket, np.arange(n)))
            self._pending_pairs += n
            self._cond.notify()
        return ticket

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            leftovers, self._pending = self._pending, deque()
            self._pending_pairs = 0
            self._cond.notify_all()
        for entry in leftovers:
            entry.ticket.fail(OverloadedError("worker stopped before this request was scored"))
        for thread in self._threads:
            thread.join(timeout=10)

    # -- scheduling ------------------------------------------------------------------------

    def _purge(self, now: float) -> None:
        """Drop queued requests no one will read: cancelled, past their deadline, or sure to miss it."""
        kept: deque[_Entry] = deque()
        ahead = self._inflight_pairs
        for entry in self._pending:
            t = entry.ticket
            if not t.done and t.deadline is not None:
                finish = now + (ahead + len(entry.todo)) * (self.seconds_per_pair or 0.0)
                if finish > t.deadline:
                    why = "passed" if now > t.deadline else "would pass before its pairs could run"
                    t.fail(DeadlineError(f"deadline {why}; dropped before compute"))
            if t.done:
                self.observer.dropped(len(entry.todo))
                self._pending_pairs -= len(entry.todo)
                continue
            ahead += len(entry.todo)
            kept.append(entry)
        self._pending = kept

    def _next_batch(self) -> tuple[Batch, bool] | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                self._purge(time.perf_counter())
                if self._pending:
                    break
                self._cond.wait()
            started = time.perf_counter()
            window: list[_Entry] = []
            size = 0
            for entry in self._pending:
                window.append(entry)
                size += len(entry.todo)
                if size >= self.window_pairs:
                    break
            counts = [len(e.todo) for e in window]
            owners = np.repeat(np.arange(len(window)), counts)
            indexes = np.concatenate([e.todo for e in window])
            lengths = np.concatenate([e.ticket.tokens.lengths[e.todo] for e in window])  # type: ignore[union-attr]
            order = np.argsort(lengths, kind="stable")
            anchor = int(np.flatnonzero(order < counts[0])[-1])  # the head request's longest input
            picked = np.sort(order[pick_batch(lengths[order].tolist(), anchor, self.max_batch_tokens,
                                              self.max_batch_pairs)])
            batch = Batch.gather([e.ticket for e in window], owners[picked], indexes[picked])
            taken = np.zeros(len(indexes), dtype=bool)
            taken[picked] = True
            for entry, kept in zip(window, np.split(~taken, np.cumsum(counts)[:-1]), strict=True):
                entry.todo = entry.todo[kept]
            self._pending = deque(e for e in self._pending if len(e.todo))
            self._pending_pairs -= len(batch)
            self._inflight_pairs += len(batch)
            depth = self._pending_pairs
        self.observer.batch_formed(len(batch), int(batch.lengths.sum()), batch.padded_tokens, depth)
        self.stages.busy("schedule", time.perf_counter() - started)
        return batch, depth > 0

    # -- the three threads -----------------------------------------------------------------

    def _schedule_loop(self) -> None:
        while True:
            formed = self._next_batch()
            if formed is None:
                self._ready.put(None)
                return
            batch, saturated = formed
            started = time.perf_counter()
            try:
                features = self.runtime.collate(batch)
            except Exception as exc:  # a bad input fails its batch, never the worker
                self._fail(batch, exc, "collating")
                continue
            self.stages.busy("collate", time.perf_counter() - started)
            self._ready.put((batch, features, saturated))

    def _forward_loop(self) -> None:
        while True:
            job = self._ready.get()
            if job is None:
                self._done.put(None)
                return
            batch, features, saturated = job
            if all(t.done for t in batch.tickets):
                self.observer.dropped(len(batch))
                self._retire(batch)
                continue
            start = time.perf_counter()
            for t in batch.tickets:
                if t.started is None:
                    t.started = start
            try:
                output = self.runtime.forward(features)
            except Exception as exc:
                self._fail(batch, exc, "inference")
                continue
            self.stages.busy("forward", time.perf_counter() - start)
            self._done.put((batch, output, start, saturated))

    def _post_loop(self) -> None:
        while True:
            job = self._done.get()
            if job is None:
                return
            batch, output, start, saturated = job
            try:
                values = self.runtime.fetch(output)
            except Exception as exc:
                self._fail(batch, exc, "inference")
                continue
            fetched = time.perf_counter()
            seconds = fetched - start
            # Work queued behind this batch and the one before it: the time between their ends is what a
            # batch really costs the host.
            busy = saturated and self._last_saturated
            self._measure(batch, fetched - self._last_done if busy else seconds)
            self._last_done, self._last_saturated = fetched, saturated
            self.observer.batch_done(len(batch), seconds)
            start_row = 0
            for t, inputs in zip(batch.tickets, batch.inputs, strict=True):  # rows are grouped by request
                t._fill(inputs, values[start_row:start_row + len(inputs)])
                start_row += len(inputs)
            self._retire(batch)
            self.stages.busy("post", time.perf_counter() - fetched)

    def _measure(self, batch: Batch, seconds: float) -> None:
        """Update the rate estimate from a batch at least half full, as batches are when work queues.

        While work queues, `seconds` is the time since the previous batch completed: everything the
        host spends per batch (tokenizing, gRPC, other processes on the same cores), not just the
        forward pass. A lone small batch costs about what a full one does, so it is skipped.
        """
        if 2 * len(batch) < self.max_batch_pairs and 2 * batch.padded_tokens < self.max_batch_tokens:
            return
        per_pair = seconds / len(batch)
        # Weighted to the latest batches: on shared cores the rate moves, and a stale estimate admits
        # requests that then miss their deadlines.
        self.seconds_per_pair = per_pair if self.seconds_per_pair is None else (
            0.5 * self.seconds_per_pair + 0.5 * per_pair)

    def _retire(self, batch: Batch) -> None:
        """A formed batch has left the pipeline: scored, failed or skipped."""
        with self._cond:
            self._inflight_pairs -= len(batch)

    def _fail(self, batch: Batch, exc: Exception, stage: str) -> None:
        """A stage failed on a batch: its requests get the error, the worker goes on."""
        log.exception("%s: %s failed on a batch of %d", self.name, stage, len(batch))
        for t in batch.tickets:
            t.fail(RuntimeError(f"inference failed: {type(exc).__name__}: {exc}"))
        self._retire(batch)
