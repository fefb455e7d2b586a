"""`--frontends auto`: how many frontend processes a worker runs, from its cores and its device.

A frontend pays where host work (protobuf, tokenizing, ranking) limits the worker: beside a GPU,
whose model leaves the host idle, several frontends feed it; on a CPU the model takes the cores
itself, and a split only moves the interpreter's work off the model's process. The figures
behind the rule are in docs/benchmarks.md, "The host path"; the GPU rule is not measured yet
(scripts/gpu-bench.sh runs 1, 2, 4 and 8 frontends).
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
    # Measured on 2 cores: one frontend was as fast as one process (MiniLM-L6 at 32 clients 61.6 against
    # 60.7 pairs/s; the 1-layer model 0.46x against 0.48x the host-path bound), the model taking the cores.
    return 0, f"a CPU with {cores} cores: one process (the model, not the host path, takes the cores)"
