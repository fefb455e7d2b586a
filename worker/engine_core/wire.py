"""What frontends and the engine core say to each other: zmq multipart frames, token arrays as raw buffers.

Every message is a list of frames; the first two are a kind and a small JSON header (one per
request, never one per pair), the rest are numpy arrays' raw buffers, as vLLM's engine core
sends them. Nothing is pickled. Frames are sent by copy: a request's arrays are tens of KB, where
a copy costs less than zmq's zero-copy bookkeeping (a garbage-collector thread per context);
they are received without one, and read in place.

    frontend -> core (PUSH -> PULL)
      submit  {id, kind, priority, timeout, frontend, seq, core}  ids, type_ids (empty if none), offsets
      cancel  {id, frontend}
      alive   {frontend}                                    every HEARTBEAT s: a silent frontend's work is dropped
    supervisor -> core (PUSH -> PULL)
      gone    {frontend}                                    a frontend died: its work is dropped at once
    core -> frontends (PUB -> SUB; the topic is the frontend's name, or b"status" for everyone)
      done    {id, started_ago, inference_s}                outputs (float32)
      failed  {id, error, message}
      status  {core, pid, ready, load_error, info, queues: {kind: QueueState}, received: {frontend: seq}}

Every header also carries `at`, the sender's time.monotonic() when it sent it. Both ends run on one
machine, where that clock (CLOCK_MONOTONIC) is the same in every process, so silence is judged by
when the other side last spoke, not by when this side got round to reading it: a receiver that was
itself starved of CPU, and reads a backlog late, does not take a live peer for dead, nor a dead
one for live (a frontend also watches the core's process, `pid`, and sees it end at once). A
submit names the core it was meant for (`core`, from that core's status): a core started afresh
refuses what was sent to the one before it, whose callers have been failed already.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from crossrank.worker.engine.batcher import QueueState
from crossrank.worker.engine.tokenizer import Tokens

HEARTBEAT = 0.1  # seconds between the core's status, and between a frontend's "alive", when nothing else is said
# Seconds without a word after which the other side is taken for dead: long enough for a busy 2-core
# machine, where a process can wait a second for a core.
SILENCE = 2.0

SUBMIT, CANCEL, ALIVE, GONE = b"submit", b"cancel", b"alive", b"gone"
DONE, FAILED, STATUS = b"done", b"failed", b"status"


def header(frames: list[Any]) -> dict[str, Any]:
    return json.loads(bytes(frames[1]))


def pack(kind: bytes, head: dict[str, Any], *arrays: np.ndarray) -> list[Any]:
    """A message's frames; its header is stamped with the time it is sent (`at`)."""
    return [kind, json.dumps({**head, "at": time.monotonic()}).encode(), *(np.ascontiguousarray(a) for a in arrays)]


def submit_frames(head: dict[str, Any], tokens: Tokens) -> list[Any]:
    types = tokens.type_ids if tokens.type_ids is not None else np.zeros(0, dtype=np.int64)
    return pack(SUBMIT, head | {"types": tokens.type_ids is not None}, tokens.ids, types, tokens.offsets)


def tokens_of(head: dict[str, Any], frames: list[Any]) -> Tokens:
    """A submit's token arrays, read in place from the received frames (zero copy)."""
    ids, types, offsets = (np.frombuffer(memoryview(f), dtype=np.int64) for f in frames[2:5])
    n = len(offsets) - 1
    return Tokens(ids, types if head["types"] else None, offsets, np.arange(n, dtype=np.int64))


def outputs_of(head: dict[str, Any], frames: list[Any]) -> np.ndarray:
    values = np.frombuffer(memoryview(frames[2]), dtype=np.float32)
    return values.reshape(head["shape"])


def queue_state_json(state: QueueState) -> dict[str, Any]:
    return asdict(state)


def queue_state_of(raw: dict[str, Any]) -> QueueState:
    return QueueState({int(p): n for p, n in raw["pending"].items()}, raw["inflight"], raw["seconds_per_pair"],
                      raw["waiting"])
