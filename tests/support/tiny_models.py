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


def build_cross_encoder(path: Path, max_length: int = 128, seed: int = 0) -> Path:
    import torch
    from transformers import BertForSequenceClassification

    path.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab_size = _tokenizer(path, max_length)
    torch.manual_seed(seed)
    BertForSequenceClassification(_config(vocab_size, max_length, num_labels=1)).save_pretrained(path)
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
