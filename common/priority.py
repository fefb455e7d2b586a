"""Request priority: lower is sooner, 0 the default, as in vLLM and Cohere's v2 rerank API.

Any int32 is accepted. Metrics fold the values into two classes so that a client sending
many distinct values cannot grow the label set: `interactive` (0 and below, the default)
and `bulk` (above 0, what the pipeline's jobs send).
"""

from __future__ import annotations

DEFAULT = 0
INTERACTIVE, BULK = "interactive", "bulk"
CLASSES = (INTERACTIVE, BULK)


def priority_class(priority: int) -> str:
    return INTERACTIVE if priority <= DEFAULT else BULK
