"""The models behind the scheduler: loading, collating a batch, launching a forward pass, fetching it.

Both runtimes load through sentence-transformers, so a Hugging Face id and a local path go
through the same code, and the scores are the ones `CrossEncoder.predict` gives.

On a GPU, `collate` pads into pinned host memory and starts the copy to the device on a side
stream, so the copy of the next batch overlaps the forward pass of this one; `forward` only
queues the kernels (the stream waits for the copy), and `fetch`, on the post thread, waits
for the outputs. On a CPU each step simply runs.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np
import torch

from crossrank.worker.engine.device import Placement
from crossrank.worker.engine.encoder import PairEncoder, pad
from crossrank.worker.engine.scheduler import Batch
from crossrank.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def _model_kwargs(placement: Placement, backend: str) -> dict[str, Any]:
    if backend != "torch":
        return {}
    # PyTorch's fused attention; store weights in the serving precision on GPUs. On CPUs bf16 runs
    # under autocast instead, which keeps layer norms and softmax in fp32.
    kwargs: dict[str, Any] = {"attn_implementation": "sdpa"}
    if placement.device.type == "cuda":
        kwargs["dtype"] = placement.dtype
    return kwargs


def _use_shape_free_attention(placement: Placement) -> None:
    """Keep PyTorch's SDPA off cuDNN's fused attention on GPUs.

    On Hopper PyTorch picks cuDNN attention first, and cuDNN builds an execution graph for every
    new batch shape (tens of ms each). A worker's batches seldom repeat a shape (any pair count
    times any padded width), so it paid that on most batches: on an H200 the first pass over 72
    bench batches ran at 776 pairs/s and the same batches again at 4,028. The memory-efficient
    and flash kernels need no per-shape build. The setting is process-wide; the worker owns it.
    """
    if placement.device.type == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)


class _Inputs:
    """Model inputs on their way to the device; `ready` is the side stream's event on a GPU."""

    def __init__(self, arrays: dict[str, np.ndarray], tensors: dict[str, torch.Tensor], ready: Any = None):
        self.arrays = arrays
        self.tensors = tensors
        self.ready = ready


class _TorchForward:
    """Shared plumbing: padding, the copy to the device, inference mode and CPU autocast."""

    placement: Placement
    encoder: PairEncoder
    _copy_stream: Any = None

    def collate(self, batch: Batch) -> _Inputs:
        arrays = pad(batch.parts, self.encoder.pad_id, self.encoder.pad_left)
        if self.placement.device.type != "cuda":
            return _Inputs(arrays, {k: torch.from_numpy(v) for k, v in arrays.items()})
        if self._copy_stream is None:
            self._copy_stream = torch.cuda.Stream(self.placement.device)
        with torch.cuda.stream(self._copy_stream):
            tensors = {k: torch.from_numpy(v).pin_memory().to(self.placement.device, non_blocking=True)
                       for k, v in arrays.items()}
            ready = torch.cuda.Event()
            ready.record(self._copy_stream)
        return _Inputs(arrays, tensors, ready)

    def _inputs(self, batch: _Inputs) -> dict[str, torch.Tensor]:
        if batch.ready is not None:
            stream = torch.cuda.current_stream(self.placement.device)
            stream.wait_event(batch.ready)
            for tensor in batch.tensors.values():
                tensor.record_stream(stream)  # the copy stream's memory is used on this one
        return batch.tensors

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.placement.device.type == "cpu" and self.placement.dtype != torch.float32:
            return torch.autocast("cpu", dtype=self.placement.dtype)
        return contextlib.nullcontext()

    def fetch(self, output: Any) -> np.ndarray:
        if isinstance(output, np.ndarray):
            return output
        return output.float().cpu().numpy()


class CrossEncoderRuntime(_TorchForward):
    """Scores padded (query, document) batches; outputs raw logits as float32."""

    def __init__(self, model_id: str, placement: Placement, max_length: int = 0, backend: str = "torch",
                 max_query_share: float = 0.25, onnx_cache: str = WorkerSettings.onnx_cache,
                 openvino_cache: str = WorkerSettings.openvino_cache,
                 openvino_hint: str = WorkerSettings.openvino_hint):
        from sentence_transformers import CrossEncoder

        self.model_id = model_id
        self.placement = placement
        self.backend = backend
        _use_shape_free_attention(placement)
        if backend != "torch" and placement.device.type != "cpu":
            raise ValueError(f"backend {backend} runs on the CPU only; use --device cpu or --backend torch")
        self.cross_encoder = CrossEncoder(model_id, device=str(placement.device),
                                          model_kwargs=_model_kwargs(placement, backend))
        if self.cross_encoder.num_labels != 1:
            raise ValueError(
                f"{model_id} has {self.cross_encoder.num_labels} output labels; a reranker needs exactly one"
            )
        self.tokenizer = self.cross_encoder.tokenizer
        model_limit = int(self.cross_encoder.max_seq_length or 512)
        self.max_length = min(max_length, model_limit) if max_length else model_limit
        self.encoder = PairEncoder(self.tokenizer, self.max_length, max_query_share)
        self.model = self.cross_encoder.model.eval()
        self.onnx = None
        self.openvino = None
        if backend.startswith("openvino"):
            from crossrank.worker.engine.openvino_runtime import OpenVinoCrossEncoder

            self.openvino = OpenVinoCrossEncoder(model_id, self.model, self.encoder, openvino_cache, placement.dtype,
                                                 int8=backend == "openvino-int8", hint=openvino_hint)
        elif backend != "torch":
            # The torch model is the export's source; the ONNX session then serves every batch.
            from crossrank.worker.engine.onnx_runtime import OnnxCrossEncoder

            self.onnx = OnnxCrossEncoder(model_id, self.model, self.tokenizer, onnx_cache,
                                         int8=backend == "onnx-int8")

    def forward(self, batch: _Inputs) -> Any:
        if self.openvino is not None:
            return self.openvino.start(batch.arrays)  # `fetch` waits for it
        if self.onnx is not None:
            return self.onnx(batch.arrays)
        with torch.inference_mode(), self._autocast():
            return self.model(**self._inputs(batch)).logits.reshape(-1)

    def fetch(self, output: Any) -> np.ndarray:
        if self.openvino is not None:
            return self.openvino.wait(output)
        return super().fetch(output)


class EmbedderRuntime(_TorchForward):
    """Embeds padded text batches with a SentenceTransformer; outputs float32 vectors."""

    def __init__(self, model_id: str, placement: Placement):
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id
        self.placement = placement
        _use_shape_free_attention(placement)
        self.model = SentenceTransformer(
            model_id, device=str(placement.device), model_kwargs=_model_kwargs(placement, "torch")
        )
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        self.max_length = int(self.model.max_seq_length or 512)
        self.encoder = PairEncoder(self.tokenizer, self.max_length, 0.25)
        self.dimensions = int(self.model.get_sentence_embedding_dimension() or 0)

    def forward(self, batch: _Inputs) -> Any:
        with torch.inference_mode(), self._autocast():
            return self.model(self._inputs(batch))["sentence_embedding"]
