"""Window mode's limits, checked from the text's length before a single token is made.

Tokenizing a long document costs seconds and hundreds of MB; a request whose windows could
never fit the queue is refused first, with INVALID_ARGUMENT (a retry would fail the same
way) and what to change. The count is an estimate that errs low, so that only requests
that cannot fit are refused here; the engine still counts the real windows after tokenizing.
"""

from __future__ import annotations

import math

from crossrank.worker.engine import LongDocument, RerankQuery
from crossrank.worker.errors import InvalidInputError
from crossrank.worker.settings import WorkerSettings

# Each window repeats the query and the special tokens; below this, that overhead and the
# number of forward passes dominate (window_tokens=1 made 100k windows of a 100k-character text).
MIN_WINDOW_TOKENS = 32
# English averages about 4 characters per token; assuming 6 keeps the window estimate low.
CHARS_PER_TOKEN = 6


def estimated_windows(chars: int, window: int, stride: int) -> int:
    tokens = chars / CHARS_PER_TOKEN
    return 1 + max(0, math.ceil((tokens - window) / stride))


def check_window_request(q: RerankQuery, settings: WorkerSettings) -> None:
    if q.long_document is not LongDocument.WINDOW:
        return
    if 0 < q.window_tokens < MIN_WINDOW_TOKENS:
        raise InvalidInputError(
            f"window_tokens {q.window_tokens} is below the minimum of {MIN_WINDOW_TOKENS}; ask for "
            f"{MIN_WINDOW_TOKENS} or more, or 0 for this worker's {settings.window_tokens}")
    window = q.window_tokens or settings.window_tokens
    stride = q.window_stride or min(settings.window_stride, window)
    if stride > window:
        raise InvalidInputError(f"window_stride {stride} is larger than window_tokens {window}; make it smaller")
    windows = sum(estimated_windows(len(d), window, stride) for d in q.documents)
    if windows > settings.max_queue_pairs:
        chars = sum(map(len, q.documents))
        raise InvalidInputError(
            f"window mode would cut these {chars} characters into at least {windows} windows, more than this "
            f"worker's queue of {settings.max_queue_pairs}; raise window_stride (now {stride}) or window_tokens "
            f"(now {window}), split the documents, or use LONG_DOCUMENT_TRUNCATE")
