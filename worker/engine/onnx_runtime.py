"""The ONNX Runtime backend: the loaded torch cross-encoder exported once to ONNX, optionally int8.

sentence-transformers' own `backend="onnx"` needs optimum-onnx, whose only release pins
transformers < 4.58, so it cannot load beside transformers 5.x. The export here uses torch's
TorchScript-based exporter and onnxruntime's dynamic quantisation, which need only `onnx` and
`onnxruntime` (the `[onnx]` extra). Exports are cached by model and weights, so a restart reuses them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def _fingerprint(model_id: str) -> str:
    """Model id plus, for a local model, its weights' sizes and times: new weights mean a new export."""
    parts = [str(Path(model_id).resolve()) if Path(model_id).exists() else model_id]
    if Path(model_id).is_dir():
        for f in sorted(Path(model_id).glob("*.safetensors")) + sorted(Path(model_id).glob("*.bin")):
            stat = f.stat()
            parts.append(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _export(model: torch.nn.Module, tokenizer: Any, path: Path) -> None:
    sample = tokenizer(["a query"] * 2, ["a document to score", "another one"], padding=True, return_tensors="pt")
    names = [n for n in INPUT_NAMES if n in sample]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(model.float().eval(), tuple(sample[n] for n in names), str(tmp), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=17, dynamo=False)
    tmp.rename(path)


def _quantize(source: Path, path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
    tmp.rename(path)


class OnnxCrossEncoder:
    """Runs a batch of padded numpy arrays through ONNX Runtime; returns one logit per row."""

    def __init__(self, model_id: str, model: torch.nn.Module, tokenizer: Any, cache: str, int8: bool = False):
        import onnxruntime as ort

        folder = Path(cache).expanduser() / _fingerprint(model_id)
        folder.mkdir(parents=True, exist_ok=True)
        fp32 = folder / "model.onnx"
        if not fp32.exists():
            log.info("exporting %s to ONNX at %s", model_id, fp32)
            _export(model, tokenizer, fp32)
        self.path = fp32
        if int8:
            self.path = folder / "model_qint8.onnx"
            if not self.path.exists():
                log.info("quantising %s to int8 at %s", fp32, self.path)
                _quantize(fp32, self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {n: batch[n].astype(np.int64, copy=False) for n in self.input_names}
        return self.session.run(None, feeds)[0].reshape(-1).astype(np.float32)
