"""Tiny random models built from real transformers classes, saved to disk, loaded like any model.

The vocabulary covers lowercase English (whole words and word pieces) and the common CJK block,
so Chinese and English text tokenize into real ids, not [UNK].
"""

from __future__ import annotations

import string
from pathlib import Path

_WORDS = (
    "the a an is of and to in what how why which for on with by from as at retrieval augmented generation "
    "rag search vector database model rerank ranking document query language large technology system "
    "paris france capital city berlin germany beijing china stock market cold flu treat weather"
).split()


def _vocab() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = ["##" + c for c in string.ascii_lowercase + string.digits]
    cjk = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)] + list("？，。！：；（）")
    return list(dict.fromkeys(special + chars + pieces + _WORDS + cjk))


def _tokenizer(path: Path, max_length: int):
    from transformers import BertTokenizerFast

    vocab = _vocab()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(path / "vocab.txt"), model_max_length=max_length), len(vocab)


def _config(vocab_size: int, max_length: int, **extra):
    from transformers import BertConfig

    # A wide initialisation spreads the random scores, so ranking and oracle checks can fail.
    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=max_length, initializer_range=0.4, **extra)


def build_cross_encoder(path: Path, max_length: int = 128, seed: int = 0, num_labels: int = 1) -> Path:
    import torch
    from transformers import BertForSequenceClassification

    path.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab_size = _tokenizer(path, max_length)
    torch.manual_seed(seed)
    BertForSequenceClassification(_config(vocab_size, max_length, num_labels=num_labels)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_bi_encoder(path: Path, max_length: int = 128, seed: int = 1) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertModel

    raw = path.parent / (path.name + "-raw")
    raw.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab_size = _tokenizer(raw, max_length)
    torch.manual_seed(seed)
    BertModel(_config(vocab_size, max_length)).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=max_length)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_word_embedding_dimension())])
    model.save(str(path))
    return path


# A Qwen3-Reranker-style template: the instruction rides in as the system message (sentence-transformers
# sends a prompt that way), the pair as "query" and "document" messages, and the model answers after
# an assistant prefill that truncation must never cut.
RERANKER_CHAT_TEMPLATE = (
    "{%- set system = messages | selectattr('role', 'eq', 'system') | map(attribute='content') | list -%}"
    "{%- set query = messages | selectattr('role', 'eq', 'query') | map(attribute='content') | first -%}"
    "{%- set document = messages | selectattr('role', 'eq', 'document') | map(attribute='content') | first -%}"
    "<|im_start|>system\njudge whether the document answers the query . say yes or no<|im_end|>\n"
    "<|im_start|>user\n<instruct>: {{ system[0] if system else 'rank the document for the query' }}\n"
    "<query>: {{ query }}\n<document>: {{ document }}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
)
RERANKER_PROMPTS = {"web": "retrieval of a document for a search query", "code": "which document is code"}


def build_causal_reranker(path: Path, max_length: int = 128, seed: int = 0, default_prompt: str | None = None) -> Path:
    """A 2-layer random Qwen3ForCausalLM saved as a CrossEncoder: scored by "yes" against "no" at the last token."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    raw = path.parent / (path.name + "-raw")
    raw.mkdir(parents=True, exist_ok=True)
    vocab = _vocab() + ["yes", "no", "instruct", "say", "answers", "judge", "whether", "code"]
    (raw / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(raw / "vocab.txt"), model_max_length=max_length,
                                  model_input_names=["input_ids", "attention_mask"])
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]})
    tokenizer.chat_template = RERANKER_CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                         max_position_embeddings=max_length, initializer_range=0.4, tie_word_embeddings=False,
                         pad_token_id=tokenizer.pad_token_id)
    Qwen3ForCausalLM(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    model = CrossEncoder(str(raw), device="cpu", prompts=RERANKER_PROMPTS, default_prompt_name=default_prompt)
    model.save_pretrained(str(path))
    return path
