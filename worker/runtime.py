"""The models behind the batcher: loading, padding a batch, and one forward pass.

Both runtimes load through sentence-transformers, so a Hugging Face id and a local path go
through the same code, and the scores are the ones `CrossEncoder.predict` gives.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from crossrank.worker.device import Placement
from crossrank.worker.pairs import Encoded

log = logging.getLogger(__name__)


def _model_kwargs(placement: Placement, backend: str) -> dict[str, Any]:
    if backend != "torch":
        return {}
    # Store weights in the serving precision on GPUs; on CPUs bf16 runs under autocast instead,
    # which keeps layer norms and softmax in fp32.
    if placement.device.type == "cuda":
        return {"dtype": placement.dtype}
    return {}


class _TorchForward:
    """Shared forward plumbing: device placement, inference mode and CPU autocast."""

    placement: Placement
    tokenizer: Any

    def collate(self, items: Sequence[Encoded]) -> dict[str, torch.Tensor]:
        return self.tokenizer.pad([item.features for item in items], padding=True, return_tensors="pt")

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.placement.device.type == "cpu" and self.placement.dtype != torch.float32:
            return torch.autocast("cpu", dtype=self.placement.dtype)
        return contextlib.nullcontext()

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.placement.device, non_blocking=True) for k, v in batch.items()}


class CrossEncoderRuntime(_TorchForward):
    """Scores padded (query, document) batches; outputs raw logits as float32."""

    def __init__(self, model_id: str, placement: Placement, max_length: int = 0, backend: str = "torch"):
        from sentence_transformers import CrossEncoder

        self.model_id = model_id
        self.placement = placement
        self.backend = backend
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
        self.model = self.cross_encoder.model.eval()
        self.onnx = None
        if backend != "torch":
            # The torch model is the export's source; the ONNX session then serves every batch.
            from crossrank.worker.onnx_runtime import OnnxCrossEncoder

            self.onnx = OnnxCrossEncoder(model_id, self.model, self.tokenizer, int8=backend == "onnx-int8")

    def forward(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        if self.onnx is not None:
            return self.onnx(batch)
        with torch.inference_mode(), self._autocast():
            logits = self.model(**self._to_device(batch)).logits
        return logits.reshape(-1).float().cpu().numpy()


class EmbedderRuntime(_TorchForward):
    """Embeds padded text batches with a SentenceTransformer; outputs float32 vectors."""

    def __init__(self, model_id: str, placement: Placement):
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id
        self.placement = placement
        self.model = SentenceTransformer(
            model_id, device=str(placement.device), model_kwargs=_model_kwargs(placement, "torch")
        )
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        self.max_length = int(self.model.max_seq_length or 512)
        self.dimensions = 0  # known after the first forward pass (warm-up)

    def encode(self, texts: list[str]) -> list[Encoded]:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        return [Encoded({k: enc[k][i] for k in keys}, len(enc["input_ids"][i]), i) for i in range(len(texts))]

    def forward(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        with torch.inference_mode(), self._autocast():
            out = self.model(self._to_device(batch))["sentence_embedding"]
        vectors = out.float().cpu().numpy()
        self.dimensions = vectors.shape[1]
        return vectors
