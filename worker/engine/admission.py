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

# The deadline rule's rate before any traffic: warm-up times START_UP_BATCHES full batches, and an
# input is priced at START_UP_MARGIN times what it cost there (see `start_up_seconds`).
START_UP_BATCHES = 3
START_UP_MARGIN = 2.0
# Admitted work must fit this share of its deadline at the estimated rate; the rest is room for the
# estimate's error, so that what is admitted almost always completes: the work ahead may run up to
# 1.5x slower than estimated. Under issue 19's overload on a shared 2-core CPU the rate over the last
# batches moved by 40% within seconds, and 3/4 let 8-9% of admitted requests be dropped. Under
# overload the queue stays full either way: the share costs no throughput, only queue depth.
# Queued work is dropped only when it would miss the whole deadline.
ADMIT_SHARE = 2 / 3


def estimated_windows(chars: int, window: int, stride: int) -> int:
    tokens = chars / CHARS_PER_TOKEN
    return 1 + max(0, math.ceil((tokens - window) / stride))


def start_up_length(max_length: int, max_batch_tokens: int, max_batch_pairs: int) -> int:
    """Tokens per input of the warm-up batches that measure the start-up rate: the longest inputs a batch
    of `max_batch_pairs` holds within its token budget (128 on a CPU by default), so the batches are
    full by both limits, as batches are when work queues."""
    return max(1, min(max_length, max_batch_tokens // max_batch_pairs))


def start_up_seconds(seconds: float) -> float:
    """What warm-up's inputs are taken to cost from the start, before traffic is measured.

    `seconds` is what warm-up's inputs took, in START_UP_BATCHES batches full by both limits
    (`start_up_length`). Without it the first burst after a start was admitted up to the queue
    limit with no wait estimate at all, and most of it then missed its deadline.

    Per input, not per token, like the rate measured on traffic that replaces it: admission has to
    price a request before it is tokenized, when all it knows is how many inputs it has (characters
    guess tokens badly: a CJK character is a token, an English word 4 to 8 characters), and the
    measured rate per input already carries the real mix of lengths and every cost the host pays per
    input. Only this start-up value has to assume a length, and it errs on the safe side twice:
    warm-up's inputs are as long as a full batch holds, and each is priced at START_UP_MARGIN times
    its cost there, because warm-up runs the model with the host idle while under traffic the same
    cores also decode, tokenize and answer (issue 19 measured that whole host path at 2.4x the cost
    of tokenizer and a 1-layer model). Real batches then refine it (`Batcher.start_rate`: it weighs as
    START_UP_BATCHES batches among the last few measured, and is gone after RATE_WINDOW real ones).

    What it can still get wrong: traffic of inputs longer than the start-up length is priced low for
    its first batches; and a request that alone would take more than ADMIT_SHARE of its deadline at
    this price is refused while others are ahead of it, though the worker might have scored it in
    time. With nothing ahead it is tried (`Admission.check_wait`), so an idle worker never refuses.
    """
    return START_UP_MARGIN * seconds


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

    def check_wait(self, wait: float | None, queued: int, adding: int, timeout: float | None,
                   alone: bool = False) -> None:
        """The deadline rule: refused at once what the measured rate cannot score within ADMIT_SHARE of
        `timeout` s, the time the request's deadline leaves.

        A request with nothing ahead of it (`alone`) is tried whatever the estimate: refused, it would
        leave an idle worker refusing such requests forever, since no batch would measure the rate
        anew; and if it cannot finish, its deadline drops it before its inputs are computed.
        """
        if wait is not None and timeout is not None and not alone and wait > ADMIT_SHARE * timeout:
            raise OverloadedError(
                f"estimated wait {wait:.1f}s for {queued} queued pairs and this request's {adding} exceeds "
                f"{ADMIT_SHARE:.0%} of its deadline of {timeout:.1f}s; retry with backoff or use another worker")
