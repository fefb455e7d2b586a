"""Random-weight cross-encoders of named architectures: speed does not depend on the weights.

A model is built once from a transformers config, saved beside a reused tokenizer, and then
loaded by path like any other model, so the bench measures the worker's real loading code.
No tokenizer of XLM-RoBERTa ships offline here, so the bge-reranker-v2-m3 shape reuses the
MiniLM (BERT WordPiece) tokenizer: the model's cost depends on sequence lengths, not on which
ids fill them, and the documents are measured in that tokenizer's tokens.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from crossrank.worker.bench.settings import BenchSettings

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # sentence-transformers' MiniLM-L6 cross-encoders (ms-marco-MiniLM-L-6-v2): BERT, 6 x 384.
    "minilm-l6": dict(kind="bert", vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                      num_attention_heads=12, intermediate_size=1536, max_position_embeddings=512),
    # The host-ceiling model: one layer, hidden 32, so the model costs almost nothing and a run measures
    # the worker's own path (gRPC, tokenizing, scheduling, collating, post-processing).
    "tiny": dict(kind="bert", vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=512),
    # BAAI/bge-reranker-v2-m3: XLM-RoBERTa large, 24 x 1024, vocab 250002, 8k positions.
    "bge-reranker-v2-m3": dict(kind="xlm-roberta", vocab_size=250002, hidden_size=1024, num_hidden_layers=24,
                               num_attention_heads=16, intermediate_size=4096, max_position_embeddings=8194,
                               # 2 token types, not XLM-R's 1: the BERT tokenizer it is paired with
                               # marks the document with type 1 (1,024 more weights, same speed).
                               type_vocab_size=2, pad_token_id=1, layer_norm_eps=1e-5),
}
MAX_INPUT_TOKENS = 512


def _config(name: str) -> Any:
    from transformers import BertConfig, XLMRobertaConfig

    spec = dict(ARCHITECTURES[name])
    kind = spec.pop("kind")
    cls = BertConfig if kind == "bert" else XLMRobertaConfig
    return cls(num_labels=1, **spec)


def build_model(name: str, settings: BenchSettings) -> Path:
    """The saved random-weight model for an architecture name, under `settings.cache()`; built on first use
    (with `settings.tokenizer()`), then reused."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}, or pass a path")
    path = settings.cache() / name
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    config = _config(name)
    tok = AutoTokenizer.from_pretrained(settings.tokenizer(), model_max_length=MAX_INPUT_TOKENS)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    # Built aside and renamed, so an interrupted build is never mistaken for a finished one.
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    tok.save_pretrained(partial)
    model.save_pretrained(partial)
    partial.rename(path)
    return path


def resolve_model(model: str, settings: BenchSettings) -> tuple[str, str]:
    """(path, description) for an architecture name or an existing model path/id."""
    if model in ARCHITECTURES:
        return str(build_model(model, settings)), f"{model} (random weights)"
    return model, model
