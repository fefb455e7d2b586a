"""Dynamic batching: schedule and collate, forward, post; threads joined by bounded queues.

Tokenized requests arrive as Tickets. The scheduling thread drops whatever can no longer be
of use (cancelled, past its deadline, or sure to miss it at the measured rate), then forms
each batch from the most urgent requests (lowest `priority`), oldest first: it sorts the
pending inputs of the requests at the head of that order by length and fills a batch around
the head request's longest input, from its own priority, up to a token budget; inputs of
less urgent requests then fill what room is left, least padding first. So requests of one
priority finish roughly in arrival order, similar lengths still share a batch, and bulk work
runs in the room and the idle time that urgent work leaves. It pads the batch (and, on a
GPU, starts its copy to the device) while the forward thread runs the previous one, a few
batches ahead (`ahead`: fewer on a CPU). The forward thread only launches the model; the post thread waits for the
outputs and scatters them to their tickets, which complete when their last input is filled. On a CPU
several forward threads may run batches side by side, each on a share of the cores (`cpu_streams.py`);
a request's inputs are filled by index, so batches may finish in any order.

A batch once formed is never preempted: an urgent request that arrives after it waits for it
and for the batches formed ahead of the forward pass (`ahead` + 1 at most).

Starvation: none is prevented, on purpose (no aging). Less urgent work waits for as long as
more urgent work fills every batch; that is what the caller asked for by sending a higher
value, and aging would hand an interactive stream's capacity to a backlog that can wait.
What bounds the wait is the request's deadline (work that would miss it is dropped here,
and the pipeline's jobs retry) and admission, which refuses bulk before interactive work.
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from crossrank.worker.engine.tokenizer import Tokens
from crossrank.worker.errors import CancelledError, DeadlineError, OverloadedError
from crossrank.worker.thread_names import NamedThread

if TYPE_CHECKING:
    from crossrank.worker.engine.cpu_streams import CpuStreams

log = logging.getLogger(__name__)

# Batches the rate is measured over. One batch's time on a shared CPU moves by 2x from one batch to
# the next; the estimate prices waits of many batches, which that noise averages out of, so it is
# the ratio of the last few batches' seconds to their inputs, not the last batch's.
RATE_WINDOW = 8

class Runtime(Protocol):
    """A model as the scheduler sees it."""

    def collate(self, batch: Batch) -> Any: ...

    def forward(self, batch: Any) -> Any: ...

    def fetch(self, output: Any) -> np.ndarray: ...


class BatchObserver(Protocol):
    def batch_formed(self, pairs: int, tokens: int, padded_tokens: int, queue_depth: int) -> None: ...

    def batch_done(self, pairs: int, seconds: float) -> None: ...

    def dropped(self, pairs: int) -> None: ...

    def scored(self, priority: int, pairs: int) -> None: ...


class StageObserver(Protocol):
    def busy(self, stage: str, seconds: float) -> None: ...


class _Null:
    def batch_formed(self, pairs: int, tokens: int, padded_tokens: int, queue_depth: int) -> None:
        pass

    def batch_done(self, pairs: int, seconds: float) -> None:
        pass

    def dropped(self, pairs: int) -> None:
        pass

    def scored(self, priority: int, pairs: int) -> None:
        pass

    def busy(self, stage: str, seconds: float) -> None:
        pass


class Ticket:
    """One request in flight: its tokens once tokenized, and its outputs in input order."""

    def __init__(self, tokens: Tokens | None = None, deadline: float | None = None, priority: int = 0):
        self.tokens = tokens
        self.priority = priority  # lower is sooner
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

    def complete(self, outputs: np.ndarray) -> None:
        """All of its outputs at once (from the engine core, in a frontend)."""
        self._fill(np.arange(self.size), outputs)

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
class QueueState:
    """A batcher's queue at one moment: what admission reads, in this process or (sent by the engine
    core) in a frontend's."""

    pending: dict[int, int] = field(default_factory=dict)  # inputs waiting for a batch, by priority
    inflight: int = 0  # inputs formed into batches and not yet scored: ahead of every queued one
    seconds_per_pair: float | None = None  # the measured rate; None before any
    waiting: dict[str, int] = field(default_factory=dict)  # batches waiting for "forward" and "post"

    def pending_pairs(self, priority: int | None = None) -> int:
        return sum(n for p, n in self.pending.items() if priority is None or p <= priority)

    def estimated_wait(self, extra_pairs: int = 0, priority: int | None = None) -> float | None:
        """Seconds until `extra_pairs` more inputs at `priority` would be computed, at the measured rate.

        Only work at the same or a more urgent priority is ahead of them (None: all work is);
        None before any rate is measured or started (`Batcher.start_rate`).
        """
        if self.seconds_per_pair is None:
            return None
        return (self.inflight + self.pending_pairs(priority) + extra_pairs) * self.seconds_per_pair


class QueueReads:
    """What admission and the metrics read of a queue, each from one `state()`: a `Batcher`'s, or the
    engine core's as a frontend sees it (`engine_core.client.CoreQueue`)."""

    def state(self) -> QueueState:
        raise NotImplementedError

    def pending_pairs(self, priority: int | None = None) -> int:
        """Inputs waiting for a batch, of requests still wanted, at `priority` or more urgent (None: all)."""
        return self.state().pending_pairs(priority)

    def pending_by_priority(self) -> dict[int, int]:
        """Inputs waiting for a batch, of requests still wanted, by priority: the true queue depths."""
        return self.state().pending

    def estimated_wait(self, extra_pairs: int = 0, priority: int | None = None) -> float | None:
        """Seconds until `extra_pairs` more inputs at `priority` would be computed (`QueueState.estimated_wait`)."""
        return self.state().estimated_wait(extra_pairs, priority)


@dataclass
class _Entry:
    """A queued ticket and the indexes of its inputs that no batch has taken yet."""

    ticket: Ticket
    todo: np.ndarray


def pick_batch(lengths: Sequence[int], anchor: int, max_tokens: int, max_pairs: int) -> list[int]:
    """Positions of a batch that holds `anchor` and its nearest neighbours by length.

    `lengths` is sorted ascending. The padded cost of a batch is its longest input times its
    size; neighbours are added, closest length first, while that cost fits `max_tokens`. On a
    tie the shorter side wins: sorted stably, it holds the older requests' inputs.
    """
    chosen = [anchor]
    longest = lengths[anchor]
    lo, hi = anchor - 1, anchor + 1
    while len(chosen) < max_pairs and (lo >= 0 or hi < len(lengths)):
        take_hi = lo < 0 or (hi < len(lengths) and lengths[hi] - lengths[anchor] < lengths[anchor] - lengths[lo])
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


def fill_batch(lengths: Sequence[int], longest: int, taken: int, max_tokens: int, max_pairs: int) -> list[int]:
    """Positions of `lengths` (sorted ascending) that fit beside `taken` inputs whose longest is `longest`.

    Inputs no longer than `longest` come first, closest in length first (they add no padding to
    the batch's longest and waste least beside it); then longer ones, shortest first, while the
    padded cost fits `max_tokens`.
    """
    chosen: list[int] = []
    split = bisect.bisect_right(lengths, longest)
    for pos in [*range(split - 1, -1, -1), *range(split, len(lengths))]:
        size = taken + len(chosen) + 1
        if size > max_pairs or max(longest, lengths[pos]) * size > max_tokens:
            break
        chosen.append(pos)
        longest = max(longest, lengths[pos])
    return chosen


def pick_by_priority(lengths: np.ndarray, levels: np.ndarray, head: int, max_tokens: int,
                     max_pairs: int) -> np.ndarray:
    """Positions of a batch: the most urgent level's around its head request, then the next levels' in the room left.

    `lengths` and `levels` (priorities) are per input; the first `head` inputs are the head
    request's, which is at the most urgent level.
    """
    chosen: list[int] = []
    longest = 0
    for level in np.unique(levels):  # ascending: most urgent first
        positions = np.flatnonzero(levels == level)
        order = positions[np.argsort(lengths[positions], kind="stable")]
        ordered = lengths[order].tolist()
        if not chosen:
            anchor = int(np.flatnonzero(order < head)[-1])  # the head request's longest input
            picked = pick_batch(ordered, anchor, max_tokens, max_pairs)
        else:
            picked = fill_batch(ordered, longest, len(chosen), max_tokens, max_pairs)
        chosen.extend(order[picked].tolist())
        longest = max([longest, *(ordered[i] for i in picked)])
        if len(chosen) >= max_pairs:
            break
    return np.sort(np.asarray(chosen, dtype=np.int64))


class Batcher(QueueReads):
    def __init__(
        self,
        runtime: Runtime,
        *,
        max_batch_tokens: int,
        max_batch_pairs: int,
        sort_window: int = 1024,
        ahead: int = 2,
        observer: BatchObserver | None = None,
        stages: StageObserver | None = None,
        name: str = "model",
        streams: CpuStreams | None = None,
    ):
        self.runtime = runtime
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_pairs = max_batch_pairs
        # The head requests' inputs sorted together: enough for two full batches, at most sort_window.
        self.window_pairs = min(sort_window, 2 * max_batch_pairs)
        self.observer: BatchObserver = observer or _Null()
        self.stages: StageObserver = stages or _Null()
        self.name = name
        # The last RATE_WINDOW measured batches' (seconds, inputs), and the seconds per input over them.
        # Only the post thread changes them once traffic runs; readers see the float, replaced whole.
        # Warm-up starts them (`start_rate`).
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=RATE_WINDOW)
        self._seconds_per_pair: float | None = None
        self._pending: dict[int, deque[_Entry]] = {}  # by priority, each in arrival order
        self._pending_pairs: Counter[int] = Counter()  # by priority
        # Inputs formed into batches and not yet scored: ahead of every queued request in time.
        self._inflight_pairs = 0
        self._cond = threading.Condition()
        # Each batch travels with whether work was still queued behind it when it was formed.
        # Batches formed ahead of the forward pass: two keep a GPU's next copy going; each is also
        # a batch an urgent request that arrives now must wait for (never preempted), so a CPU,
        # where padding costs next to nothing, forms one.
        self.ahead = ahead
        # Each batch with (saturated, when it was ready, the share of the cores its forward pass had).
        self._ready: queue.Queue[tuple[Batch, Any, bool, float] | None] = queue.Queue(maxsize=ahead)
        self._done: queue.Queue[tuple[Batch, Any, float, tuple[bool, float, float]] | None] = queue.Queue(maxsize=2)
        self._last_done, self._last_saturated = 0.0, False
        self._stopping = False
        # Forward threads: one, or on a CPU one per stream; how many are running a pass, and how many live.
        self.streams = streams
        forwards = streams.count if streams else 1
        self._forward_lock = threading.Lock()
        self._forwarding = 0
        self._forwards_live = forwards
        self._threads = [
            NamedThread(target=self._schedule_loop, name=f"{name}-schedule", daemon=True),
            *(NamedThread(target=self._forward_loop, name=f"{name}-forward" + (f"-{k}" if k else ""),
                          daemon=True) for k in range(forwards)),
            NamedThread(target=self._post_loop, name=f"{name}-post", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- what callers see ------------------------------------------------------------------

    def batches_waiting(self, stage: str) -> int:
        """Formed batches waiting for a stage: "forward" (collated) or "post" (launched, not yet fetched)."""
        return {"forward": self._ready, "post": self._done}[stage].qsize()

    def state(self) -> QueueState:
        """The queue now, counting only requests still wanted."""
        with self._cond:
            pending = {p: sum(len(e.todo) for e in entries if not e.ticket.done)
                       for p, entries in self._pending.items()}
            inflight = self._inflight_pairs
        return QueueState(pending, inflight, self.seconds_per_pair,
                          {stage: self.batches_waiting(stage) for stage in ("forward", "post")})

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
            self._pending.setdefault(ticket.priority, deque()).append(_Entry(ticket, np.arange(n)))
            self._pending_pairs[ticket.priority] += n
            self._cond.notify()
        return ticket

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            leftovers, self._pending = self._pending, {}
            self._pending_pairs.clear()
            self._cond.notify_all()
        for entry in (e for entries in leftovers.values() for e in entries):
            entry.ticket.fail(OverloadedError("worker stopped before this request was scored"))
        for thread in self._threads:
            thread.join(timeout=10)

    # -- scheduling ------------------------------------------------------------------------

    def _in_order(self) -> Iterator[_Entry]:
        """Queued requests in the order they are served: most urgent first, then oldest first."""
        for priority in sorted(self._pending):
            yield from self._pending[priority]

    def _purge(self, now: float) -> None:
        """Drop queued requests no one will read: cancelled, past their deadline, or sure to miss it.

        Sure to miss: at the measured rate, its inputs would finish after the whole deadline. Admission
        wanted them done within ADMIT_SHARE of it at that rate, so an admitted request is dropped here
        only when the rate gets that much worse (`admission.ADMIT_SHARE`).
        """
        kept: dict[int, deque[_Entry]] = {}
        ahead = self._inflight_pairs
        for entry in self._in_order():
            t = entry.ticket
            if not t.done and t.deadline is not None:
                finish = now + (ahead + len(entry.todo)) * (self.seconds_per_pair or 0.0)
                if finish > t.deadline:
                    why = "passed" if now > t.deadline else "would pass before its pairs could run"
                    t.fail(DeadlineError(f"deadline {why}; dropped before compute"))
            if t.done:
                self.observer.dropped(len(entry.todo))
                self._pending_pairs[t.priority] -= len(entry.todo)
                continue
            ahead += len(entry.todo)
            kept.setdefault(t.priority, deque()).append(entry)
        self._pending = kept
        self._pending_pairs = +self._pending_pairs  # no key per priority ever seen: only those queued

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
            for entry in self._in_order():
                window.append(entry)
                size += len(entry.todo)
                if size >= self.window_pairs:
                    break
            counts = [len(e.todo) for e in window]
            owners = np.repeat(np.arange(len(window)), counts)
            indexes = np.concatenate([e.todo for e in window])
            lengths = np.concatenate([e.ticket.tokens.lengths[e.todo] for e in window])  # type: ignore[union-attr]
            levels = np.repeat([e.ticket.priority for e in window], counts)
            picked = pick_by_priority(lengths, levels, counts[0], self.max_batch_tokens, self.max_batch_pairs)
            batch = Batch.gather([e.ticket for e in window], owners[picked], indexes[picked])
            taken = np.zeros(len(indexes), dtype=bool)
            taken[picked] = True
            for entry, used in zip(window, np.split(taken, np.cumsum(counts)[:-1]), strict=True):
                entry.todo = entry.todo[~used]
                self._pending_pairs[entry.ticket.priority] -= int(used.sum())
            self._pending = {p: rest for p, entries in self._pending.items()
                             if (rest := deque(e for e in entries if len(e.todo)))}
            self._inflight_pairs += len(batch)
            depth = sum(self._pending_pairs.values())
        self.observer.batch_formed(len(batch), int(batch.lengths.sum()), batch.padded_tokens, depth)
        self.stages.busy("schedule", time.perf_counter() - started)
        return batch, depth > 0

    # -- the threads -----------------------------------------------------------------

    def _schedule_loop(self) -> None:
        while True:
            formed = self._next_batch()
            if formed is None:
                for _ in range(self._forwards_live):  # one stop mark per forward thread
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
            self._ready.put((batch, features, saturated, time.perf_counter()))

    def _forward_loop(self) -> None:
        while True:
            job = self._ready.get()
            if job is None:
                with self._forward_lock:
                    self._forwards_live -= 1
                    last = self._forwards_live == 0
                if last:  # the post thread stops after every forward thread's last batch
                    self._done.put(None)
                return
            batch, features, saturated, formed = job
            if all(t.done for t in batch.tickets):
                self.observer.dropped(len(batch))
                self._retire(batch)
                continue
            with self._forward_lock:
                self._forwarding += 1
                alone = self._forwarding == 1 and self._ready.empty() and not self._pending
            share = 1.0
            if self.streams is not None:
                share = self.streams.before_forward(alone) / self.streams.cores
            start = time.perf_counter()
            for t in batch.tickets:
                if t.started is None:
                    t.started = start
            try:
                output = self.runtime.forward(features)
            except Exception as exc:
                self._fail(batch, exc, "inference")
                continue
            finally:
                with self._forward_lock:
                    self._forwarding -= 1
            self.stages.busy("forward", time.perf_counter() - start)
            self._done.put((batch, output, start, (saturated, formed, share)))

    def _post_loop(self) -> None:
        while True:
            job = self._done.get()
            if job is None:
                return
            batch, output, start, (saturated, formed, share) = job
            try:
                values = self.runtime.fetch(output)
            except Exception as exc:
                self._fail(batch, exc, "inference")
                continue
            fetched = time.perf_counter()
            seconds = fetched - start
            # Work queued behind this batch and the one before it, and this one ready before that one ended:
            # the time between their ends is what a batch really costs the host. (Queued work can vanish,
            # cancelled or past its deadline, and the worker idle before the next batch forms.) Else its own
            # time, as if on all the cores where it had a share of them.
            busy = saturated and self._last_saturated and formed <= self._last_done
            self._measure(batch, fetched - self._last_done if busy else seconds * share)
            self._last_done, self._last_saturated = fetched, saturated
            self.observer.batch_done(len(batch), seconds)
            start_row = 0
            for t, inputs in zip(batch.tickets, batch.inputs, strict=True):  # rows are grouped by request
                self.observer.scored(t.priority, len(inputs))  # counted before the caller can see its result
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
        # Only the last few batches: on shared cores the rate moves, and a stale estimate admits
        # requests that then miss their deadlines.
        self._rate_window.append((seconds, len(batch)))
        self._update_rates()

    def _update_rates(self) -> None:
        window = self._rate_window
        self._seconds_per_pair = sum(s for s, _ in window) / max(1, sum(n for _, n in window))

    @property
    def seconds_per_pair(self) -> float | None:
        """Seconds per input over the last RATE_WINDOW measured batches: what waits are estimated at."""
        return self._seconds_per_pair

    @seconds_per_pair.setter
    def seconds_per_pair(self, value: float | None) -> None:
        """As if measured: the window starts over from one input that took `value` s (None: no rate)."""
        self._rate_window.clear()
        if value is None:
            self._seconds_per_pair = None
        else:
            self.start_rate(value, 1)

    def start_rate(self, seconds: float, pairs: int) -> None:
        """The rate before any traffic: `pairs` inputs took `seconds` (warm-up's, priced on the safe side).

        It counts as those inputs among the last RATE_WINDOW batches, so real batches outweigh it as
        they come and have pushed it out after RATE_WINDOW of them. Called before traffic only.
        """
        self._rate_window.clear()
        self._rate_window.append((seconds, pairs))
        self._update_rates()

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
