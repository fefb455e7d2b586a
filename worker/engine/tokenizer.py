"""Turn (query, document) texts into model inputs: instructions, query capping, truncation and windows.

Everything here works on text cut at token offsets and then tokenized as a normal pair, so
each model's own special tokens and token types come from its tokenizer, whatever it is. A
model with a chat template (causal-LM rerankers) gets each pair rendered through it instead
(`chat_template.py`), and truncation there cuts the document, never the template's suffix.

The Rust tokenizer behind a Hugging Face fast tokenizer keeps its truncation setting as
state that each call rewrites, so every thread gets a copy of its own (no lock), and its
batch encoding runs without the GIL: threads tokenize in parallel. Results are numpy
arrays, one flat array of ids per request, never a Python list per pair.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from crossrank.worker.engine.chat_template import ChatTemplate, Frame
from crossrank.worker.engine.types import LongDocument
from crossrank.worker.errors import InvalidInputError, TooLongError


@dataclass(frozen=True)
class Tokens:
    """A request's model inputs, unpadded and end to end: input i is ids[offsets[i]:offsets[i+1]].

    `sources[i]` is the document (or pair, or text) input i scores; a window adds inputs with
    the same source. `type_ids` is None for models without token types.
    """

    ids: np.ndarray
    type_ids: np.ndarray | None
    offsets: np.ndarray
    sources: np.ndarray

    @classmethod
    def of(cls, encodings: Sequence[Any], sources: Sequence[int], with_types: bool) -> Tokens:
        # chain.from_iterable walks the lists in C: half the time of a generator over every id.
        id_lists = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
        offsets = np.zeros(len(encodings) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=total)
        types = (np.fromiter(chain.from_iterable(e.type_ids for e in encodings), dtype=np.int64, count=total)
                 if with_types else None)
        return cls(ids, types, offsets, np.asarray(sources, dtype=np.int64))

    @classmethod
    def concat(cls, parts: Sequence[Tokens]) -> Tokens:
        shifts = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
        offsets = np.concatenate([[0]] + [p.offsets[1:] + s for p, s in zip(parts, shifts, strict=True)])
        types = None if parts[0].type_ids is None else np.concatenate([p.type_ids for p in parts])
        return cls(np.concatenate([p.ids for p in parts]), types, offsets.astype(np.int64),
                   np.concatenate([p.sources for p in parts]))

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def total(self) -> int:
        return int(self.offsets[-1])


def keep_suffix(tokens: Tokens, max_length: int, suffix: np.ndarray) -> Tokens:
    """Inputs longer than max_length cut to their first `max_length - len(suffix)` tokens plus `suffix`.

    What sentence-transformers does to a truncated chat-template row (`_restore_chat_template_suffix`),
    on the flat arrays at once.
    """
    lengths = tokens.lengths
    long = lengths > max_length
    if not long.any():
        return tokens
    kept = np.where(long, max_length, lengths)
    offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(kept, out=offsets[1:])
    row = np.repeat(np.arange(len(kept)), kept)
    position = np.arange(int(offsets[-1])) - offsets[row]
    source = tokens.offsets[row] + position
    ids = tokens.ids[source]
    start = max_length - len(suffix)
    from_suffix = long[row] & (position >= start)
    ids[from_suffix] = suffix[position[from_suffix] - start]
    types = None if tokens.type_ids is None else tokens.type_ids[source]
    return Tokens(ids, types, offsets, tokens.sources)


def pad(parts: Sequence[tuple[Tokens, np.ndarray]], pad_id: int, left: bool = False) -> dict[str, np.ndarray]:
    """Inputs of several requests padded into int64 model inputs, one request's block at a time.

    `parts` holds each request's Tokens and the indexes of the inputs to take from it; the rows
    follow in that order. Each block is one gather over the request's flat ids, not a loop per input.
    """
    lengths = np.concatenate([t.lengths[i] for t, i in parts])
    width = int(lengths.max())
    rows = len(lengths)
    ids = np.full((rows, width), pad_id, dtype=np.int64)
    mask = np.zeros((rows, width), dtype=np.int64)
    with_types = parts[0][0].type_ids is not None
    types = np.zeros((rows, width), dtype=np.int64) if with_types else None
    cols = np.arange(width)
    row = 0
    for t, inputs in parts:
        n = t.lengths[inputs][:, None]
        first = (width - n) if left else np.zeros_like(n)  # the column of each input's first token
        valid = (cols >= first) & (cols < first + n)
        source = (t.offsets[inputs][:, None] + cols - first)[valid]
        block = slice(row, row + len(inputs))
        ids[block][valid] = t.ids[source]
        mask[block][valid] = 1
        if types is not None:
            types[block][valid] = t.type_ids[source]  # type: ignore[index]
        row += len(inputs)
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return batch


class _Rust:
    """One thread's copy of the Rust tokenizer, set for one use at a time."""

    def __init__(self, source: str):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_str(source)
        self.tok.no_padding()
        self.tok.no_truncation()
        self.truncation: tuple[int, str] | None = None

    def encode(self, inputs: list[Any], special: bool = True, truncate_to: int | None = None,
               offsets: bool = False) -> list[Any]:
        """Pairs are truncated in the document only, single texts at their end (as transformers does).

        Character offsets are computed only when asked for: without them encoding takes less than
        half the time (`encode_batch_fast`).
        """
        truncation = None if truncate_to is None else (
            truncate_to, "only_second" if inputs and isinstance(inputs[0], tuple) else "longest_first")
        if truncation != self.truncation:
            if truncation is None:
                self.tok.no_truncation()
            else:
                self.tok.enable_truncation(truncation[0], strategy=truncation[1])
            self.truncation = truncation
        encode = self.tok.encode_batch if offsets else self.tok.encode_batch_fast
        return encode(inputs, add_special_tokens=special)


class PairTokenizer:
    """Pairs into token arrays; `transformer`, the model's own input module, brings its chat template."""

    def __init__(self, tokenizer: Any, max_length: int, max_query_share: float, transformer: Any = None):
        self.tokenizer = tokenizer
        self._source = tokenizer.backend_tokenizer.to_str()  # serialised once, copied per thread
        self._local = threading.local()
        self.with_types = "token_type_ids" in tokenizer.model_input_names
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.pad_left = tokenizer.padding_side == "left"
        self.max_length = max_length
        self.template: ChatTemplate | None = None
        if transformer is not None and "message" in getattr(transformer, "modality_config", {}):
            self.template = ChatTemplate(transformer, self._ids)
        self.special_tokens = self._count_special_tokens()
        self.max_query_tokens = max(1, int((max_length - self.special_tokens) * max_query_share))

    @property
    def _rust(self) -> _Rust:
        rust = getattr(self._local, "rust", None)
        if rust is None:
            rust = self._local.rust = _Rust(self._source)
        return rust

    def prepare_thread(self) -> None:
        """Make the calling thread's tokenizer copy now rather than on its first request."""
        self._rust.encode(["a"])

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._rust.encode(texts, special=False)]

    def _count_special_tokens(self) -> int:
        """Tokens a pair takes beyond its texts: special tokens, or the chat template's text."""
        if self.template is not None:
            return len(self._ids([self.template.frame(None).text("", "")])[0])
        pair = len(self._rust.encode([("a", "b")])[0].ids)
        single = len(self._rust.encode(["a"], special=False)[0].ids)
        return pair - 2 * single

    def _token_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        return [e.offsets for e in self._rust.encode(texts, special=False, offsets=True)]

    def cap_query(self, query: str) -> str:
        """The query cut to max_query_tokens, at a token boundary."""
        spans = self._token_spans([query])[0]
        if len(spans) <= self.max_query_tokens:
            return query
        return query[: spans[self.max_query_tokens - 1][1]]

    def _frame_tokens(self, query: str, prompt: str | None) -> int:
        """Tokens of a pair with an empty document: what every window of the document comes with."""
        if self.template is not None:
            return len(self._ids([self.template.frame(prompt).text(query, "")])[0])
        return self.special_tokens + len(self._token_spans([(prompt or "") + query])[0])

    def windows(self, query: str, document: str, window: int, stride: int, prompt: str | None = None) -> list[str]:
        """Overlapping slices of the document, each at most `window` tokens, covering all of it.

        The window shrinks when the query (and instruction, and template) leave less room than asked for.
        """
        return self._windows(document, window, stride, self.max_length - self._frame_tokens(query, prompt))

    def _windows(self, document: str, window: int, stride: int, room: int) -> list[str]:
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

    def _pairs(self, query: str, documents: list[str], sources: list[int], truncate: bool,
               prompt: str | None) -> Tokens:
        if self.template is None:
            # sentence-transformers puts a prompt before the query of a plain pair (prepend_prompt_to_texts).
            encodings = self._rust.encode([((prompt or "") + query, d) for d in documents],
                                          truncate_to=self.max_length if truncate else None)
            return Tokens.of(encodings, sources, self.with_types)
        frame: Frame = self.template.frame(prompt)
        encodings = self._rust.encode([frame.text(query, d) for d in documents], special=False)
        tokens = Tokens.of(encodings, sources, self.with_types)
        return keep_suffix(tokens, self.max_length, frame.suffix) if truncate else tokens

    def encode(
        self,
        query: str,
        documents: list[str],
        mode: LongDocument = LongDocument.TRUNCATE,
        window: int = 400,
        stride: int = 200,
        prompt: str | None = None,
    ) -> Tokens:
        """Model inputs for one query against many documents; `sources` are the documents' indexes.

        `prompt` is the instruction (already resolved by the runtime), None for none.
        """
        query = self.cap_query(query)
        framed = self._frame_tokens(query, prompt)  # the query is capped: only an instruction can overflow
        if framed >= self.max_length:
            raise InvalidInputError(
                f"the instruction, query and template take {framed} of the model's {self.max_length} "
                "tokens, leaving none for the document; shorten the instruction")
        if mode is LongDocument.TRUNCATE:
            return self._pairs(query, documents, list(range(len(documents))), True, prompt)
        if mode is LongDocument.ERROR:
            tokens = self._pairs(query, documents, list(range(len(documents))), False, prompt)
            too_long = tokens.sources[tokens.lengths > self.max_length].tolist()
            if too_long:
                shown = ", ".join(map(str, too_long[:10])) + (" ..." if len(too_long) > 10 else "")
                raise TooLongError(
                    f"{len(too_long)} document(s) exceed the model's {self.max_length} tokens with the query "
                    f"(indexes {shown}); shorten them, or send long_document TRUNCATE or WINDOW",
                    self.max_length, int(tokens.lengths.max()),
                )
            return tokens
        texts: list[str] = []
        sources: list[int] = []
        for i, document in enumerate(documents):
            for piece in self._windows(document, window, stride, self.max_length - framed):
                texts.append(piece)
                sources.append(i)
        return self._pairs(query, texts, sources, True, prompt)

    def encode_texts(self, texts: list[str]) -> Tokens:
        """Single texts (the Embed path), each truncated to max_length."""
        encodings = self._rust.encode(texts, truncate_to=self.max_length)
        return Tokens.of(encodings, range(len(texts)), self.with_types)
