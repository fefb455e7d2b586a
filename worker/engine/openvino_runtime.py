"""The OpenVINO backend: the loaded torch cross-encoder converted once to OpenVINO IR, optionally int8.

sentence-transformers' own `backend="openvino"` goes through optimum-intel, whose release
(2.2.0) pins transformers < 5.6 and would downgrade the transformers 5.x the worker runs on.
So the conversion here is OpenVINO's own `openvino.convert_model` on the torch model (as the
ONNX backend exports with torch), and int8 is NNCF's post-training quantisation of that IR
(`nncf.quantize`, transformer preset: weights and activations of the matmuls in int8, softmax
and layer norms left in float). Both need only the `[openvino]` extra.

int8 calibrates on the synthetic bench workload (English words and CJK characters, in
the length mix of web passages): the worker has no data of its own to calibrate on.

Every core is kept busy by OpenVINO, not by Python threads: the model is compiled with a
performance hint (THROUGHPUT: several streams, each on a share of the cores; LATENCY: one
stream on all of them), and as many infer requests as the hint asks for run at once.
`start` hands a batch to an idle request and returns; `wait` (the post thread) collects it.
The scheduler keeps up to three batches between forward and post, so with THROUGHPUT the
streams run different batches side by side.

The precision follows `--dtype`: OpenVINO would otherwise run bf16 by itself on any CPU
with native bf16, and the worker's fp32 would silently not be fp32. Exports and OpenVINO's
compiled-model cache live under `openvino_cache`, one folder per model and weights.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossrank.worker.engine.onnx_runtime import INPUT_NAMES, _fingerprint

log = logging.getLogger(__name__)

_PRECISIONS = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}
# 30 queries of 10 documents: NNCF's default calibration subset of 300 inputs.
CALIBRATION_QUERIES = 30


def _convert(model: torch.nn.Module, tokenizer: Any, path: Path) -> None:
    import openvino as ov

    sample = tokenizer(["a query"] * 2, ["a document to score", "another one"], padding=True, return_tensors="pt")
    names = [n for n in INPUT_NAMES if n in sample]
    shapes = [(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in names]  # dynamic batch and sequence
    # Tracing warns at each Python branch on a shape in transformers' code; the branches are the same for
    # every input shape here (no cache, no causal mask), and the scores are checked against torch in the tests.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        converted = ov.convert_model(model.float().eval(), example_input={n: sample[n] for n in names}, input=shapes)
    tmp = path.with_name(f"tmp-{os.getpid()}-{path.name}")
    ov.save_model(converted, tmp, compress_to_fp16=False)  # the weights as trained; int8 is its own file
    tmp.with_suffix(".bin").rename(path.with_suffix(".bin"))
    tmp.rename(path)


def calibration_inputs(encoder: Any) -> list[dict[str, np.ndarray]]:
    """One padded input per synthetic pair, as `collate` would make for a batch of one."""
    from crossrank.worker.bench.workload import make_workload
    from crossrank.worker.engine.batcher import Batch, Ticket
    from crossrank.worker.engine.tokenizer import pad

    pairs = [
        (q.query, d) for q in make_workload(CALIBRATION_QUERIES, seed=7, min_docs=10, max_docs=10) for d in q.documents
    ]
    tickets = [Ticket(encoder.encode(q, [d])) for q, d in pairs]
    batches = [Batch.gather(tickets, np.array([i]), np.zeros(1, dtype=np.int64)) for i in range(len(tickets))]
    return [pad(b.parts, encoder.pad_id, encoder.pad_left) for b in batches]


def _int8_dot_products() -> bool:
    """Whether the CPU multiplies int8 in 32-bit sums (VNNI, AMX). Without, AVX2's u8 x s8 instructions add
    pairs of products in 16 bits, which saturate on 8-bit weights: NNCF's overflow fix then quantises every
    weight to 7 bits. A random tiny model kept a Spearman of 0.45 against fp32 on an AVX2 CPU without it,
    over 0.8 with it (tests/core/test_openvino.py)."""
    from crossrank.worker.engine.cpu_class import cpu_flags

    return bool({"avx512_vnni", "amx_tile"} & cpu_flags())


def int8_file_name() -> str:
    """The int8 IR's name: one per kind of quantisation, so a cache shared between CPUs keeps both."""
    return "model_int8.xml" if _int8_dot_products() else "model_int8_7bit.xml"


def _quantize(source: Path, path: Path, inputs: list[dict[str, np.ndarray]]) -> None:
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    model = ov.Core().read_model(source)
    names = [i.get_any_name() for i in model.inputs]
    data = nncf.Dataset(inputs, lambda x: {n: x[n].astype(np.int64) for n in names})
    fix = OverflowFix.FIRST_LAYER if _int8_dot_products() else OverflowFix.ENABLE  # FIRST_LAYER: NNCF's default
    quantized = nncf.quantize(model, data, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(inputs),
                              advanced_parameters=AdvancedQuantizationParameters(overflow_fix=fix))
    tmp = path.with_name(f"tmp-{os.getpid()}-{path.name}")
    ov.save_model(quantized, tmp, compress_to_fp16=False)
    tmp.with_suffix(".bin").rename(path.with_suffix(".bin"))
    tmp.rename(path)


class OpenVinoCrossEncoder:
    """Runs batches of padded numpy arrays on OpenVINO's CPU plugin; one logit per row."""

    def __init__(
        self,
        model_id: str,
        model: torch.nn.Module,
        encoder: Any,
        cache: str,
        dtype: torch.dtype,
        int8: bool = False,
        hint: str = "throughput",
    ):
        import openvino as ov

        folder = Path(cache).expanduser() / _fingerprint(model_id)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "model.xml"
        if not self.path.exists():
            started = time.perf_counter()
            _convert(model, encoder.tokenizer, self.path)
            log.info("converted %s to OpenVINO IR at %s in %.1fs", model_id, self.path, time.perf_counter() - started)
        if int8:
            fp32, self.path = self.path, folder / int8_file_name()
            if not self.path.exists():
                started = time.perf_counter()
                _quantize(fp32, self.path, calibration_inputs(encoder))
                log.info("quantised %s to int8 at %s in %.1fs", fp32, self.path, time.perf_counter() - started)
        self._core = ov.Core()
        # Compiled blobs are kept beside the IR, so a restart skips compilation.
        self._core.set_property({"CACHE_DIR": str(folder / "compiled")})
        self._precision = _PRECISIONS[dtype]
        self._use(self._core.compile_model(str(self.path), "CPU", {"PERFORMANCE_HINT": hint.upper(),
                                                                   "INFERENCE_PRECISION_HINT": self._precision}))

    def _use(self, compiled: Any) -> None:
        """Serve with `compiled`, and as many idle infer requests as it says run best at once."""
        self.compiled = compiled
        self.input_names = [i.get_any_name() for i in compiled.inputs]
        self.requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self.requests):
            self._idle.put(compiled.create_infer_request())

    @contextlib.contextmanager
    def on_one_thread(self) -> Iterator[None]:
        """The same model compiled for one core (one stream, one thread) while the block runs: what the
        bench's M1 measures. OpenVINO keeps threads of its own, which torch's thread count does not set."""
        served = self.compiled, self._idle, self.requests
        self._use(self._core.compile_model(str(self.path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                                   "INFERENCE_NUM_THREADS": 1,
                                                                   "INFERENCE_PRECISION_HINT": self._precision}))
        try:
            yield
        finally:
            self.compiled, self._idle, self.requests = served

    def start(self, batch: dict[str, np.ndarray]) -> tuple[Any, queue.SimpleQueue[Any]]:
        """Hand a batch to an idle infer request (waiting for one while all are busy); returns at once,
        with the request and the queue it goes back to (that of the model compiled when it started)."""
        idle = self._idle
        request = idle.get()
        try:
            request.start_async({n: batch[n].astype(np.int64, copy=False) for n in self.input_names})
        except Exception:
            idle.put(request)
            raise
        return request, idle

    def wait(self, started: tuple[Any, queue.SimpleQueue[Any]]) -> np.ndarray:
        request, idle = started
        try:
            request.wait()
            return request.get_output_tensor(0).data.reshape(-1).astype(np.float32)  # a copy: the request is reused
        finally:
            idle.put(request)
