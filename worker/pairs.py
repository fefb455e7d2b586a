"""Turn (query, document) texts into model inputs: query capping, truncation and windows.

Everything here works on text cut at token offsets and then tokenized as a normal pair, so
each model's own special tokens and token types come from its tokenizer, whatever it is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum
from typing import Any

from crossrank.worker.errors import TooLongError


class LongDocument(Enum):
    TRUNCATE = "truncate"
    WINDOW = "window"
    ERROR = "error"


@dataclass(frozen=True)
class Encoded:
    """One model input: its features (unpadded), its length in tokens, and the document it scores."""

    features: dict[str, list[int]]
    length: int
    source: int


class PairEncoder:
    def __init__(self, tokenizer: Any, max_length: int, max_query_share: float):
        self.tokenizer = tokenizer
        # A fast tokenizer keeps its truncation setting as shared state that each call rewrites, so
        # concurrent calls with different settings (spans untruncated, pairs truncated) could leak
        # one's setting into the other and emit over-long inputs: calls are serialised here.
        self._lock = threading.Lock()
        self.max_length = max_length
        self.max_query_tokens = max(1, int((max_length - self._special_tokens()) * max_query_share))

    def _tokenize(self, *args, **kwargs):
        with self._lock:
            return self.tokenizer(*args, **kwargs)

    def _special_tokens(self) -> int:
        pair = len(self._tokenize("a", "b")["input_ids"])
        single = len(self._tokenize("a", add_special_tokens=False)["input_ids"])
        return pair - 2 * single

    def _token_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        enc = self._tokenize(texts, add_special_tokens=False, return_offsets_mapping=True)
        return enc["offset_mapping"]

    def cap_query(self, query: str) -> str:
        """The query cut to max_query_tokens, at a token boundary."""
        spans = self._token_spans([query])[0]
        if len(spans) <= self.max_query_tokens:
            return query
        return query[: spans[self.max_query_tokens - 1][1]]

    def windows(self, query: str, document: str, window: int, stride: int) -> list[str]:
        """Overlapping slices of the document, each at most `window` tokens, covering all of it.

        The window shrinks when the query leaves less room than asked for.
        """
        room = self.max_length - self._special_tokens() - len(self._token_spans([query])[0])
        window = max(1, min(window, room))
        stride = max(1, min(stride, window))
        spans = self._token_spans([document])[0]
        n = len(spans)
        if n <= window:
            return [document]
        starts = list(range(0, n - window + 1, stride))
        if starts[-1] + window < n:
            starts.append(n - window)
        return [document[spans[s][0] : spans[s + window - 1][1]] for s in starts]

    def _pairs(self, query: str, documents: list[str], sources: list[int], truncate: bool) -> list[Encoded]:
        if not documents:
            return []
        enc = self._tokenize(
            [query] * len(documents),
            documents,
            truncation="only_second" if truncate else False,
            max_length=self.max_length if truncate else None,
        )
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        return [
            Encoded({k: enc[k][i] for k in keys}, len(enc["input_ids"][i]), source)
            for i, source in enumerate(sources)
        ]

    def encode(
        self,
        query: str,
        documents: list[str],
        mode: LongDocument = LongDocument.TRUNCATE,
        window: int = 400,
        stride: int = 200,
    ) -> list[Encoded]:
        """Model inputs for one query against many documents; `source` is the document's index."""
        query = self.cap_query(query)
        if mode is LongDocument.TRUNCATE:
            return self._pairs(query, documents, list(range(len(documents))), truncate=True)
        if mode is LongDocument.ERROR:
            encoded = self._pairs(query, documents, list(range(len(documents))), truncate=False)
            too_long = [e.source for e in encoded if e.length > self.max_length]
            if too_long:
                shown = ", ".join(map(str, too_long[:10])) + (" ..." if len(too_long) > 10 else "")
                raise TooLongError(
                    f"{len(too_long)} document(s) exceed the model's {self.max_length} tokens with the query "
                    f"(indexes {shown}); shorten them, or send long_document TRUNCATE or WINDOW",
                    self.max_length, max(e.length for e in encoded),
                )
            return encoded
        texts: list[str] = []
        sources: list[int] = []
        for i, document in enumerate(documents):
            for piece in self.windows(query, document, window, stride):
                texts.append(piece)
                sources.append(i)
        return self._pairs(query, texts, sources, truncate=True)
