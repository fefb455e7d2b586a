"""Model FLOPs utilisation: useful model FLOPs per second over a matmul peak measured here and now.

FLOPs count the encoder's matrix multiplies on real (unpadded) tokens, 2 FLOPs per multiply-add;
padding, embeddings lookups, norms and activations are not useful work and are not counted.
Per layer and token of a sequence of s tokens, with hidden size h and FFN size f:
  Q, K, V and output projections 4 h^2 MACs; FFN 2 h f MACs; scores QK^T and weights x V 2 s h MACs.
Per sequence, the pooler and the one-logit head add h^2 + h MACs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    intermediate: int

    @classmethod
    def of(cls, config) -> Shape:
        return cls(config.num_hidden_layers, config.hidden_size, config.intermediate_size)


def sequence_flops(shape: Shape, length: int) -> int:
    """Matmul FLOPs of one forward pass over one sequence of `length` tokens."""
    h, f = shape.hidden, shape.intermediate
    per_token_layer = 4 * h * h + 2 * h * f + 2 * length * h
    head = h * h + h
    return 2 * (shape.layers * length * per_token_layer + head)


def total_flops(shape: Shape, lengths: Iterable[int]) -> int:
    return sum(sequence_flops(shape, n) for n in lengths)


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int = 0, seconds: float = 1.0) -> float:
    """Best FLOP/s of a square matmul at `dtype`, timed for about `seconds` after a warm-up."""
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(2):
            a @ b
        sync()
        best = float("inf")
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            a @ b
            sync()
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best
