"""Documents cut to a number of tokens before they reach the engine, at token boundaries.

Two APIs ask for a cut the engine's own truncation does not make: Cohere's v2
`max_tokens_per_doc` keeps each document's first N tokens, and TEI's
`truncation_direction: Left` keeps the end of a document too long for the model, where the
engine keeps its start. Both are cut here with the engine's own tokenizer (its character
offsets), so the engine then scores the text that is left. Runs on the request's worker
thread: tokenizing is CPU work. A worker still loading has no tokenizer: documents pass
unchanged and the engine answers that it is loading.
"""

from __future__ import annotations

from crossrank.worker.engine import Engine
from crossrank.worker.engine.tokenizer import PairTokenizer


def _offsets(tokenizer: PairTokenizer, texts: list[str]) -> list[list[tuple[int, int]]]:
    # verbose=False: a text longer than the model's limit is the point here, not a mistake to log.
    encoded = tokenizer.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return encoded["offset_mapping"]


def keep_first_tokens(engine: Engine, documents: list[str], tokens: int) -> list[str]:
    """Each document's first `tokens` tokens (Cohere's max_tokens_per_doc)."""
    if engine.pair_tokenizer is None or not documents:
        return documents
    return [
        doc if len(spans) <= tokens else doc[: spans[tokens - 1][1]]
        for doc, spans in zip(documents, _offsets(engine.pair_tokenizer, documents), strict=True)
    ]


def keep_last_tokens(engine: Engine, query: str, documents: list[str]) -> list[str]:
    """Each document's end, as much as fits beside the query in the model's input (TEI's Left)."""
    tokenizer = engine.pair_tokenizer
    if tokenizer is None or not query.strip() or not documents:
        return documents
    query_tokens = len(_offsets(tokenizer, [tokenizer.cap_query(query)])[0])
    room = max(1, tokenizer.max_length - tokenizer.special_tokens - query_tokens)
    return [
        doc if len(spans) <= room else doc[spans[-room][0] :]
        for doc, spans in zip(documents, _offsets(tokenizer, documents), strict=True)
    ]
