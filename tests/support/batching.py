"""A deterministic stand-in model for the batcher's tests, and tickets made of numbers.

The stand-in returns each input's first token id, so every output names the input it came from.
Two gates hold it: `gate` inside a forward pass, `collate_gate` on the scheduling thread right
after it formed a batch, so that a test can queue work and know which batch is formed next.
"""

from __future__ import annotations

import threading

import numpy as np

from crossrank.worker.engine.batcher import Batcher, Ticket
from crossrank.worker.engine.tokenizer import Tokens


class EchoRuntime:
    """Records every batch; `gate` holds the runner inside a forward pass, `collate_gate` the scheduler."""

    def __init__(self):
        self.batches: list[list[int]] = []  # each batch's input lengths
        self.idents: list[list[int]] = []  # each batch's input idents
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.collate_gate = threading.Event()
        self.collate_gate.set()
        self.collating = threading.Event()

    def collate(self, batch):
        self.collating.set()
        self.collate_gate.wait(10)
        return [
            (int(tokens.ids[tokens.offsets[i]]), int(tokens.lengths[i]))
            for tokens, inputs in batch.parts
            for i in inputs
        ]

    def forward(self, batch):
        self.entered.set()
        self.gate.wait(10)
        self.batches.append([length for _, length in batch])
        self.idents.append([ident for ident, _ in batch])
        return np.array([ident for ident, _ in batch], dtype=np.float64)

    def fetch(self, output):
        return output


def items(idents, lengths, deadline=None, priority=0):
    """A ticket whose input k is `lengths[k]` copies of `idents[k]`."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.concatenate([np.full(n, i) for i, n in zip(idents, lengths, strict=True)]).astype(np.int64)
    return Ticket(Tokens(ids, None, offsets, np.arange(len(lengths))), deadline=deadline, priority=priority)


def finish_order(batcher, named: list, release: threading.Event) -> list:
    """Submit each (name, ticket), set `release`, wait for all: the names in the order they finished."""
    finished: list = []
    tickets = []
    for name, ticket in named:
        ticket.add_done_callback(lambda _t, name=name: finished.append(name))
        tickets.append(batcher.submit(ticket))
    release.set()
    for ticket in tickets:
        ticket.result(timeout=10)
    return finished


def make(runtime, **limits):
    values = dict(max_batch_tokens=64, max_batch_pairs=8, sort_window=64)
    values.update(limits)
    return Batcher(runtime, **values)
