"""`--torch-graph traced`: a sequence classifier traced once with TorchScript and run without Python per module.

Eager, transformers runs the model module by module in Python, and the forward thread holds the GIL for
each step, so the event loop, the tokenizer threads' Python side and the batcher wait on it. On a 2-core
CPU that is what kept the one-process worker at half its bound (docs/benchmarks.md, "A traced graph").
A traced graph runs in TorchScript's interpreter, which lets go of the GIL for the whole call, and does the
same arithmetic (the scores matched eager bit for bit, fp32 and bf16 autocast, on the models tried).

Tracing records one path through the model's Python: a branch on a shape is fixed at the shape it was
traced with. So the trace is checked against eager at start, on batches of other sizes and lengths than the
one it was traced on, and a model whose trace scores differently is refused in one line. Sequence
classifiers only: there the chain's scores are the model's logits.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence

import torch

# How far a traced score may be from eager's before the model is refused: float noise only.
TOLERANCE = 1e-4


class _Logits(torch.nn.Module):
    """The classifier with positional tensors in and logits out: what `torch.jit.trace` takes."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str]):
        super().__init__()
        self.model, self.names = model, tuple(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors, strict=True))).logits


class TracedClassifier:
    def __init__(self, model: torch.nn.Module, example: dict[str, torch.Tensor],
                 precision: Callable[[], contextlib.AbstractContextManager]):
        """`example`: the model's inputs for one batch; `precision`: the context eager runs in (autocast)."""
        self.names = sorted(example)
        self.precision = precision
        with torch.inference_mode(), precision(), warnings.catch_warnings():
            # The tracer warns at every branch on a shape; whether one mattered is what `differs` checks.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(_Logits(model, self.names).eval(), self._args(example), check_trace=False)
            self.graph = torch.jit.freeze(traced)

    def _args(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(inputs[name] for name in self.names)

    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode(), self.precision():
            return self.graph(*self._args(inputs))

    def differs(self, inputs: dict[str, torch.Tensor], eager: torch.Tensor) -> float:
        """How far this graph's scores are from eager's on a batch: 0 where tracing kept the model."""
        return float((self(inputs).float().reshape(eager.shape) - eager.float()).abs().max())

