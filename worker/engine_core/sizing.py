"""`--frontends auto`: how many frontend processes a worker runs, from its cores and its device.

A frontend pays where host work (protobuf, tokenizing, ranking) limits the worker: beside a GPU,
whose model leaves the host idle, several frontends feed it; on a CPU the model takes the cores
itself, and a split only moves the interpreter's work off the model's process. The figures
behind the rule are in docs/benchmarks.md, "The host path".
"""

from __future__ import annotations

# Beside a GPU: one frontend per two host cores (a frontend keeps about one and a half busy: its
# event loop and its tokenizer threads), at most this many.
MAX_GPU_FRONTENDS = 8


def auto_frontends(on_gpu: bool, cores: int) -> tuple[int, str]:
    """The number of frontends for `--frontends auto`, and why, in a few words."""
    if on_gpu:
        count = max(1, min(MAX_GPU_FRONTENDS, cores // 2))
        return count, f"a GPU and {cores} cores: one frontend per 2 cores, at most {MAX_GPU_FRONTENDS}"
    if cores <= 2:
        return 1, f"a CPU with {cores} cores: one frontend beside the model's process"
    return max(1, cores // 4), f"a CPU with {cores} cores: one frontend per 4 cores"
