"""Admission: every check a request passes before it costs a tokenizer thread, in one place.

Both transports reach it through the engine's `submit_*` calls. Bad input is InvalidInputError
(INVALID_ARGUMENT: a retry would fail the same way) with what to change; no room is
OverloadedError (RESOURCE_EXHAUSTED: retry later or elsewhere). Window mode is checked from the
text's length before a single token is made: tokenizing a long document costs seconds and
hundreds of MB, so a request whose windows could never fit the queue is refused first. That
count is an estimate that errs low; the queue rule runs again on the real count once tokenized.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from crossrank.worker.engine.types import LongDocument, RerankQuery
from crossrank.worker.errors import InvalidInputError, OverloadedError
from crossrank.worker.settings import WorkerSettings

# Each window repeats the query and the special tokens; below this, that overhead and the
# number of forward passes dominate (window_tokens=1 made 100k windows of a 100k-character text).
MIN_WINDOW_TOKENS = 32
# English averages about 4 characters per token; assuming 6 keeps the window estimate low.
CHARS_PER_TOKEN = 6


def estimated_windows(chars: int, window: int, stride: int) -> int:
    tokens = chars / CHARS_PER_TOKEN
    return 1 + max(0, math.ceil((tokens - window) / stride))


class Admission:
    def __init__(self, settings: WorkerSettings):
        self.settings = settings

    # -- the request itself ----------------------------------------------------------------

    def window(self, q: RerankQuery | None = None) -> tuple[int, int]:
        """The window and stride, in document tokens, that a request asks for or else this worker's."""
        s = self.settings
        if q is None:
            return s.window_tokens, s.window_stride
        if 0 < q.window_tokens < MIN_WINDOW_TOKENS:
            raise InvalidInputError(
                f"window_tokens {q.window_tokens} is below the minimum of {MIN_WINDOW_TOKENS}; ask for "
                f"{MIN_WINDOW_TOKENS} or more, or 0 for this worker's {s.window_tokens}")
        window = q.window_tokens or s.window_tokens
        stride = q.window_stride or min(s.window_stride, window)
        if stride > window:
            raise InvalidInputError(f"window_stride {stride} is larger than window_tokens {window}; make it smaller")
        return window, stride

    def check_rerank(self, q: RerankQuery) -> None:
        if not q.query.strip():
            raise InvalidInputError("query is empty: send the text to rank the documents against")
        self.check_texts("document", q.documents, len(q.query) + len(q.instruction or ""))
        if q.long_document is LongDocument.WINDOW:
            self._check_windows(q)

    def check_pairs(self, pairs: Sequence[tuple[str, str]]) -> None:
        if not pairs:
            raise InvalidInputError("no pairs: send at least one (query, document) pair")
        empty = [i for i, (query, _) in enumerate(pairs) if not query.strip()]
        if empty:
            raise InvalidInputError(f"pair(s) {empty[:10]} have an empty query")
        self.check_texts("pair", [query + document for query, document in pairs])

    def check_texts(self, what: str, texts: Sequence[str], extra_chars: int = 0) -> None:
        s = self.settings
        if not texts:
            raise InvalidInputError(f"no {what}s: send at least one")
        if len(texts) > s.max_documents_per_request:
            raise InvalidInputError(
                f"{len(texts)} {what}s is more than this worker's limit of {s.max_documents_per_request} "
                "per request; split the request")
        total = sum(map(len, texts)) + extra_chars
        if total > s.max_characters_per_request:
            raise InvalidInputError(
                f"request has {total} characters, more than this worker's limit of "
                f"{s.max_characters_per_request}; split it or shorten the {what}s")

    def _check_windows(self, q: RerankQuery) -> None:
        window, stride = self.window(q)
        windows = sum(estimated_windows(len(d), window, stride) for d in q.documents)
        limit = self.settings.max_queue_pairs
        if windows > limit:
            chars = sum(map(len, q.documents))
            raise InvalidInputError(
                f"window mode would cut these {chars} characters into at least {windows} windows, more than "
                f"this worker's queue of {limit}; raise window_stride (now {stride}) or window_tokens "
                f"(now {window}), split the documents, or use LONG_DOCUMENT_TRUNCATE")

    # -- room for it -----------------------------------------------------------------------

    def check_room(self, queued: int, adding: int) -> None:
        """The queue rule: `queued` inputs waiting at the request's priority or more urgent, and a request
        adding `adding` more. Less urgent work does not count, so bulk work is refused before interactive
        work: a bulk request counts the interactive queue too, an interactive one never the bulk queue."""
        limit = self.settings.max_queue_pairs
        if queued + adding > limit:
            raise OverloadedError(
                f"queue full: {queued} pairs waiting, this request adds {adding}, "
                f"limit {limit}; retry with backoff or use another worker")

    def check_total(self, queued: int, adding: int) -> None:
        """The memory bound: whatever priorities clients send, all queues together hold at most twice the
        limit, which one interactive and one bulk queue, each full, reach and do not pass."""
        limit = 2 * self.settings.max_queue_pairs
        if queued + adding > limit:
            raise OverloadedError(
                f"queues full: {queued} pairs waiting at all priorities, this request adds {adding}, "
                f"limit {limit}; retry with backoff or use another worker")

    def check_wait(self, wait: float | None, queued: int, adding: int, timeout: float | None) -> None:
        """The deadline rule: refused at once what the measured rate cannot score before `timeout` s."""
        if wait is not None and timeout is not None and wait > timeout:
            raise OverloadedError(
                f"estimated wait {wait:.1f}s for {queued} queued pairs and this request's {adding} exceeds "
                f"its deadline of {timeout:.1f}s; retry with backoff or use another worker")
