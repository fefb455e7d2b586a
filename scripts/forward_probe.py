"""Where does a forward pass of the worker's model lose time against a bare Hugging Face loop?

Times the bench's (m) batches (pre-tokenized, length-sorted, token-budgeted) through several
variants of the same model and prints pairs/s for each, then the top CUDA kernels of the
worker's own forward. A one-off diagnostic for the GPU machine (docs/benchmarks.md says what it
found); on a CPU use --model tiny --device cpu to check that it runs.

    python scripts/forward_probe.py --model bge-reranker-v2-m3 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch

from crossrank.worker.bench.models import resolve_model
from crossrank.worker.bench.runners import sorted_batches
from crossrank.worker.bench.settings import BenchSettings
from crossrank.worker.bench.workload import make_workload
from crossrank.worker.engine.device import place
from crossrank.worker.engine.runtime import CrossEncoderRuntime


def timed(name: str, pairs: int, call, inputs: list[dict[str, torch.Tensor]], device: torch.device) -> None:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        call(inputs[-1])
        sync()
        launch_start = start = time.perf_counter()
        outs = [call(x) for x in inputs]
        launched = time.perf_counter() - launch_start
        sync()
        [o.float().cpu() for o in outs]
        wall = time.perf_counter() - start
    print(f"{name:<44} {pairs / wall:9.1f} pairs/s  wall {wall:6.2f} s  launch {launched:6.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bge-reranker-v2-m3")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="fp16")
    parser.add_argument("--queries", type=int, default=128)
    parser.add_argument("--max-batch-tokens", type=int, default=16384)
    parser.add_argument("--max-batch-pairs", type=int, default=256)
    args = parser.parse_args()

    import sentence_transformers
    import transformers

    print(f"torch {torch.__version__} transformers {transformers.__version__} "
          f"sentence-transformers {sentence_transformers.__version__}")
    print(f"tf32 matmul {torch.backends.cuda.matmul.allow_tf32} cudnn {torch.backends.cudnn.allow_tf32}")
    path, _ = resolve_model(args.model, BenchSettings.from_env())
    placement = place(args.device, args.dtype)
    runtime = CrossEncoderRuntime(path, placement)
    model = runtime.model
    print(f"worker model: {type(model).__name__} params {sorted({str(p.dtype) for p in model.parameters()})} "
          f"attn {model.config._attn_implementation} training {model.training}")
    rows = sorted_batches(runtime, make_workload(args.queries, 0), args.max_batch_tokens, args.max_batch_pairs)
    pairs = sum(len(b) for b in rows)
    collated = [runtime.collate(b) for b in rows]
    device = placement.device
    tensors = [{k: torch.from_numpy(v).to(device) for k, v in b.arrays.items()} for b in collated]
    widths = [b["input_ids"].shape for b in tensors]
    print(f"{pairs} pairs in {len(rows)} batches; shapes first {widths[0]} middle {widths[len(widths) // 2]} "
          f"last {widths[-1]}; padded tokens {sum(a * b for a, b in widths)}")

    # cuDNN attention builds a graph per new shape: time each setting on shapes it has not seen,
    # then again on the same shapes. The worker turns cuDNN attention off (runtime.py).
    print(f"cudnn sdp enabled: {torch.backends.cuda.cudnn_sdp_enabled()}")
    timed("worker runtime.forward, first pass", pairs, lambda b: runtime.forward(b), collated, device)
    timed("worker runtime.forward, same shapes again", pairs, lambda b: runtime.forward(b), collated, device)
    timed("model, inputs on device", pairs, lambda x: model(**x).logits, tensors, device)
    if device.type == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(True)
        timed("cuDNN attention on: first pass", pairs, lambda b: runtime.forward(b), collated, device)
        timed("cuDNN attention on: same shapes again", pairs, lambda b: runtime.forward(b), collated, device)
        torch.backends.cuda.enable_cudnn_sdp(False)
    pad_id = runtime.pair_tokenizer.pad_id
    padded = [{k: torch.nn.functional.pad(v, (0, -v.shape[1] % 64), value=pad_id if k == "input_ids" else 0)
               for k, v in x.items()} for x in tensors]
    timed("widths padded to a multiple of 64", pairs, lambda x: model(**x).logits, padded, device)

    encoder = model.base_model.encoder
    layer = encoder.layer[0]
    hidden = torch.randn(64, 256, model.config.hidden_size, device=device, dtype=placement.dtype)
    with torch.inference_mode():
        for _ in range(3):
            layer(hidden)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(20):
            layer(hidden)
        if device.type == "cuda":
            torch.cuda.synchronize()
        per = (time.perf_counter() - start) / 20
    h, f = model.config.hidden_size, model.config.intermediate_size
    flops = 2 * 64 * 256 * (4 * h * h + 2 * h * f + 2 * 256 * h)
    print(f"one layer, 64 x 256 tokens, no mask: {per * 1e3:.2f} ms = {flops / per / 1e12:.1f} TFLOP/s")
    a = torch.randn(16384, h, device=device, dtype=placement.dtype)
    w = torch.randn(f, h, device=device, dtype=placement.dtype)
    with torch.inference_mode():
        for _ in range(3):
            torch.nn.functional.linear(a, w)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(20):
            torch.nn.functional.linear(a, w)
        if device.type == "cuda":
            torch.cuda.synchronize()
        per = (time.perf_counter() - start) / 20
    print(f"linear 16384x{h} @ {h}x{f}: {2 * 16384 * h * f / per / 1e12:.1f} TFLOP/s")

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    middle = collated[len(collated) // 2: len(collated) // 2 + 4]
    with torch.profiler.profile(activities=activities) as prof, torch.inference_mode():
        for b in middle:
            runtime.fetch(runtime.forward(b))
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=60))


if __name__ == "__main__":
    main()
