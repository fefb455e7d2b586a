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

from crossrank.worker.engine.answer_head import narrow_answer_head
from crossrank.worker.engine.batcher import Batch
from crossrank.worker.engine.device import Placement
from crossrank.worker.engine.tokenizer import PairTokenizer, Tokens, pad
from crossrank.worker.engine.traced_graph import TOLERANCE as TRACE_TOLERANCE
from crossrank.worker.engine.traced_graph import TracedClassifier
from crossrank.worker.errors import InvalidInputError, ModelRefusedError
from crossrank.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def _drop_weights(model: torch.nn.Module) -> None:
    """Free a loaded model's weights, keeping its modules: a frontend needs the tokenizer, the prompts
    and the chat template of a model, never its weights (the engine core has them). Loading without
    them needs `accelerate`; loading and dropping costs a moment and memory only while it lasts."""
    model.to("meta")


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
    pair_tokenizer: PairTokenizer
    _copy_stream: Any = None

    def collate(self, batch: Batch) -> _Inputs:
        return self.collate_parts(batch.parts)

    def collate_parts(self, parts: list[tuple[Tokens, np.ndarray]]) -> _Inputs:
        arrays = pad(parts, self.pair_tokenizer.pad_id, self.pair_tokenizer.pad_left)
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
    """Scores padded (query, document) batches with the model's own module chain; outputs float32 scores.

    A `CrossEncoder` is a chain of modules (sentence-transformers `cross_encoder/model.py`): a
    sequence classifier's `Transformer` gives the scores itself; a causal LM's `Transformer`
    gives the logits at the last position and `LogitScore` turns them into "yes" against "no".
    Running that chain on the batch, rather than the Hugging Face model alone, is what keeps the
    scores equal to `CrossEncoder.predict` for every family it loads. The causal LM projects
    its last position only (`logits_to_keep=1`, as `predict` asks), and only onto the rows
    `LogitScore` reads ("yes" and "no", `answer_head.py`), never the vocabulary at every position.
    """

    def __init__(self, model_id: str, placement: Placement, max_length: int = 0, backend: str = "torch",
                 max_query_share: float = 0.25, onnx_cache: str = WorkerSettings.onnx_cache,
                 default_prompt: str = "", openvino_cache: str = WorkerSettings.openvino_cache,
                 openvino_hint: str = WorkerSettings.openvino_hint, weights: bool = True,
                 torch_graph: str = WorkerSettings.torch_graph):
        """`weights=False`: the tokenizer side only (a frontend's), which tokenizes and resolves prompts."""
        from sentence_transformers import CrossEncoder

        self.model_id = model_id
        self.placement = placement
        self.backend = backend
        _use_shape_free_attention(placement)
        if backend != "torch" and placement.device.type != "cpu":
            raise ValueError(f"backend {backend} runs on the CPU only; use --device cpu or --backend torch")
        self.cross_encoder = CrossEncoder(model_id, device=str(placement.device) if weights else "cpu",
                                          model_kwargs=_model_kwargs(placement, backend) if weights else {})
        transformer = self.cross_encoder[0]
        self.task = getattr(transformer, "transformer_task", "sequence-classification")
        self.architecture = type(self.cross_encoder.model).__name__
        if backend != "torch" and self.task != "sequence-classification":
            raise ModelRefusedError(
                f"backend {backend} serves sequence classifiers only, not {self.architecture}; use --backend torch")
        self.tokenizer = self.cross_encoder.tokenizer
        model_limit = int(self.cross_encoder.max_seq_length or 512)
        self.max_length = min(max_length, model_limit) if max_length else model_limit
        self.pair_tokenizer = PairTokenizer(self.tokenizer, self.max_length, max_query_share, transformer)
        self.default_prompt = self._default_prompt(default_prompt)
        self.model = self.cross_encoder.model.eval()
        self.graph = ""  # how --backend torch runs the model, and why (`_graph`); empty without weights or torch
        if not weights:
            _drop_weights(self.model)
            return
        self.answer_head = self.task == "text-generation" and narrow_answer_head(self.cross_encoder)
        # What the model's own preprocess adds beside the token arrays (`Transformer.preprocess`).
        self._features: dict[str, Any] = {"modality": "message" if self.pair_tokenizer.template else "text"}
        if self.task in ("text-generation", "any-to-any"):
            self._features["logits_to_keep"] = 1
        self.onnx = None
        self.openvino = None
        self.traced: TracedClassifier | None = None
        if backend.startswith("openvino"):
            from crossrank.worker.engine.openvino_runtime import OpenVinoCrossEncoder

            self.openvino = OpenVinoCrossEncoder(model_id, self.model, self.pair_tokenizer, openvino_cache,
                                                 placement.dtype, int8=backend == "openvino-int8", hint=openvino_hint)
        elif backend != "torch":
            # The torch model is the export's source; the ONNX session then serves every batch.
            from crossrank.worker.engine.onnx_runtime import OnnxCrossEncoder

            self.onnx = OnnxCrossEncoder(model_id, self.model, self.tokenizer, onnx_cache,
                                         int8=backend == "onnx-int8")
        self._check_one_score_per_pair()
        self.graph = self._graph(torch_graph)

    @property
    def takes_instruction(self) -> bool:
        """Whether an instruction reaches the model: its chat template renders one, or it has saved prompts."""
        if self.pair_tokenizer.template is not None:
            return self.pair_tokenizer.template.takes_instruction
        return any(self.cross_encoder.prompts.values())

    def _default_prompt(self, name: str) -> str | None:
        """The saved prompt named by --default-prompt, or else the model's own default (None: none)."""
        prompts = self.cross_encoder.prompts
        if name and name not in prompts:
            saved = ", ".join(sorted(prompts)) or "none"
            raise ModelRefusedError(f"default_prompt {name!r} is not one of {self.model_id}'s saved prompts "
                                    f"({saved}); set --default-prompt to one of them, or leave it empty")
        chosen = name or self.cross_encoder.default_prompt_name
        return (prompts.get(chosen) or None) if chosen else None

    def prompt(self, instruction: str | None) -> str | None:
        """The instruction a request sends, or the default prompt; refused where the model takes none."""
        if instruction is None:
            return self.default_prompt
        if not self.takes_instruction:
            raise InvalidInputError(f"{self.model_id} takes no instruction (no saved prompts, no chat template "
                                    "that renders one); send the request without an instruction")
        return instruction

    def _check_one_score_per_pair(self) -> None:
        """Refuse at start a model whose chain does not give exactly one score per pair."""
        tokens = self.pair_tokenizer.encode("warm up", ["a document", "a longer document than the first"])
        try:
            shape = tuple(self._chain(self.collate_parts([(tokens, np.arange(len(tokens)))])).shape)
            gives = f"scores of shape {shape}"
        except KeyError:  # its last module writes no "scores"
            shape, gives = (), "no 'scores'"
        if shape not in ((2,), (2, 1)):
            raise ModelRefusedError(f"{self.model_id} ({self.architecture}, {self.task}) gives {gives} for 2 pairs, "
                                    "not one score per pair; serve a reranker with one output")

    def _graph(self, wanted: str) -> str:
        """Run the model traced or eager, as `wanted` says; what was picked, and why where auto picked it.

        auto traces on a CPU, where a traced 1-layer model's stream ran 1.12-1.26x eager's and MiniLM's as
        fast (docs/benchmarks.md), and falls back to eager, saying why, where the trace does not hold. On a
        GPU it stays eager until a traced run is measured there.
        """
        if self.backend != "torch":
            if wanted == "traced":
                raise ModelRefusedError(f"--torch-graph traced runs --backend torch, not {self.backend}; "
                                        "serve it with --torch-graph auto or eager")
            return ""
        if wanted == "eager":
            return "eager"
        if wanted == "auto" and self.placement.device.type != "cpu":
            return "eager (auto: traced is picked on a CPU only)"
        why_not = self._trace()
        if wanted == "traced" and why_not:
            raise ModelRefusedError(f"{why_not}; serve it with --torch-graph eager")
        if why_not:
            log.info("%s runs eager: %s", self.model_id, why_not)
            return f"eager (auto: {why_not})"
        return "traced" + (" (auto: on a CPU, its scores equal eager's)" if wanted == "auto" else "")

    def _trace(self) -> str:
        """Trace the classifier on one batch and check it against eager on others; why not, where it does not hold.

        The checks are batches of other sizes and lengths, up to a long input (at most 512 tokens, to keep
        the start short): a branch on a shape that tracing fixed shows as scores unlike eager's.
        """
        if self.task != "sequence-classification":
            return f"--torch-graph traced serves sequence classifiers, not {self.architecture} ({self.task})"
        traced_on, *checks = [self.collate_parts([(t, np.arange(len(t)))]) for t in (
            self.pair_tokenizer.encode("warm up", ["a document", "a longer document than the first"]),
            self.pair_tokenizer.encode("a longer query than before", [f"document {i} " + "word " * (9 * i)
                                                                       for i in range(5)]),
            self.pair_tokenizer.encode("q", ["x"]),
            self.pair_tokenizer.encode("a query", ["word " * min(self.max_length, 512), "short"]))]
        try:
            traced = TracedClassifier(self.model, self._inputs(traced_on), self._autocast)
            worst = max(traced.differs(self._inputs(b), self._chain(b)) for b in (traced_on, *checks))
        except Exception as exc:  # a model whose Python the tracer cannot follow
            return f"{self.model_id} does not trace ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        if worst > TRACE_TOLERANCE:
            return f"{self.model_id}: its traced graph scores {worst:.2g} away from eager on batches of other shapes"
        self.traced = traced
        log.info("%s traced (TorchScript); its scores equal eager's within %.0e", self.model_id, TRACE_TOLERANCE)
        return ""

    def _chain(self, batch: _Inputs) -> torch.Tensor:
        if self.onnx is not None:
            return torch.from_numpy(self.onnx(batch.arrays))
        if self.traced is not None:
            return self.traced(self._inputs(batch))
        with torch.inference_mode(), self._autocast():
            return self.cross_encoder({**self._inputs(batch), **self._features})["scores"]

    def forward(self, batch: _Inputs) -> Any:
        if self.openvino is not None:
            return self.openvino.start(batch.arrays)  # `fetch` waits for it
        return self._chain(batch).reshape(-1)

    def fetch(self, output: Any) -> np.ndarray:
        if self.openvino is not None:
            return self.openvino.wait(output)
        return super().fetch(output)


class EmbedderRuntime(_TorchForward):
    """Embeds padded text batches with a SentenceTransformer; outputs float32 vectors."""

    def __init__(self, model_id: str, placement: Placement, weights: bool = True):
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id
        self.placement = placement
        _use_shape_free_attention(placement)
        self.model = SentenceTransformer(
            model_id, device=str(placement.device) if weights else "cpu",
            model_kwargs=_model_kwargs(placement, "torch") if weights else {})
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        self.max_length = int(self.model.max_seq_length or 512)
        self.pair_tokenizer = PairTokenizer(self.tokenizer, self.max_length, 0.25)
        self.dimensions = int(self.model.get_sentence_embedding_dimension() or 0)
        if not weights:
            _drop_weights(self.model)

    def forward(self, batch: _Inputs) -> Any:
        with torch.inference_mode(), self._autocast():
            return self.model(self._inputs(batch))["sentence_embedding"]
