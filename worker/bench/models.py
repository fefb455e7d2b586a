"""Random-weight cross-encoders of named architectures: speed does not depend on the weights.

A model is built once from a transformers config, saved beside a reused tokenizer, and then
loaded by path like any other model, so the bench measures the worker's real loading code.
No tokenizer of XLM-RoBERTa ships offline here, so the bge-reranker-v2-m3 shape reuses the
MiniLM (BERT WordPiece) tokenizer: the model's cost depends on sequence lengths, not on which
ids fill them, and the documents are measured in that tokenizer's tokens. The Qwen3-Reranker
shape (a causal LM scored by "yes" against "no") gets that tokenizer too, with Qwen's chat
markers added and Qwen3-Reranker's prompt as its chat template, so every pair pays the
template's tokens as it does with the real model.
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
    # Qwen/Qwen3-Reranker-0.6B: Qwen3ForCausalLM, 28 x 1024, GQA 16/8 heads of 128, vocab 151669, tied head.
    "qwen3-reranker-0.6b": dict(kind="qwen3", vocab_size=151669, hidden_size=1024, num_hidden_layers=28,
                                num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                intermediate_size=3072, max_position_embeddings=40960, rope_theta=1000000.0,
                                rms_norm_eps=1e-6, tie_word_embeddings=True),
}
# Qwen3-Reranker's prompt (its model card), as a chat template over sentence-transformers' pair messages:
# the instruction is the system message, the pair the "query" and "document" messages.
QWEN3_RERANKER_CHAT_TEMPLATE = (
    "{%- set system = messages | selectattr('role', 'eq', 'system') | map(attribute='content') | list -%}"
    "{%- set query = messages | selectattr('role', 'eq', 'query') | map(attribute='content') | first -%}"
    "{%- set document = messages | selectattr('role', 'eq', 'document') | map(attribute='content') | first -%}"
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    "<Instruct>: {{ system[0] if system else 'Given a web search query, retrieve relevant passages that answer "
    "the query' }}\n<Query>: {{ query }}\n<Document>: {{ document }}<|im_end|>\n<|im_start|>assistant\n"
    "<think>\n\n</think>\n\n"
)
MAX_INPUT_TOKENS = 512


def _config(name: str) -> Any:
    from transformers import BertConfig, Qwen3Config, XLMRobertaConfig

    spec = dict(ARCHITECTURES[name])
    kind = spec.pop("kind")
    if kind == "qwen3":
        return Qwen3Config(architectures=["Qwen3ForCausalLM"], **spec)
    cls = BertConfig if kind == "bert" else XLMRobertaConfig
    return cls(num_labels=1, **spec)


def _tokenizer(name: str, settings: BenchSettings) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(settings.tokenizer(), model_max_length=MAX_INPUT_TOKENS)
    if ARCHITECTURES[name]["kind"] == "qwen3":
        tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]})
        tok.chat_template = QWEN3_RERANKER_CHAT_TEMPLATE
    return tok


def build_model(name: str, settings: BenchSettings) -> Path:
    """The saved random-weight model for an architecture name, under `settings.cache()`; built on first use
    (with `settings.tokenizer()`), then reused."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}, or pass a path")
    path = settings.cache() / name
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    config = _config(name)
    tok = _tokenizer(name, settings)
    torch.manual_seed(0)
    causal = config.architectures and config.architectures[0].endswith("ForCausalLM")
    model = (AutoModelForCausalLM if causal else AutoModelForSequenceClassification).from_config(config)
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
