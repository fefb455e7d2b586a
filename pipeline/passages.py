"""Long documents become overlapping passages that keep their document's id.

Windows are counted in characters, which works the same for Chinese (no spaces) and English; a
window's end moves back to the nearest whitespace or sentence mark when one is close, so English
words are not cut in half. Passage ids are `<doc id>#<n>`: the same document always gives the
same ids, which is what makes a repeated upsert harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

_BREAKS = " \n\t。！？；.!?;，,"


@dataclass(frozen=True)
class Passage:
    id: str
    doc_id: str
    number: int
    text: str


def _cut(text: str, start: int, end: int) -> int:
    """`end`, or a break point in the last fifth of the window."""
    if end >= len(text):
        return len(text)
    floor = start + (end - start) * 4 // 5
    for i in range(end, floor, -1):
        if text[i - 1] in _BREAKS:
            return i
    return end


def _begin(text: str, start: int, end: int) -> int:
    """`start`, or just after a break point in the overlap, so a passage does not open mid-word."""
    if start == 0 or text[start - 1] in _BREAKS:
        return start
    for i in range(start, end):
        if text[i] in _BREAKS:
            return i + 1
    return start


def split_passages(doc_id: str, text: str, size: int, overlap: int) -> list[Passage]:
    if size < 1 or not 0 <= overlap < size:
        raise ValueError("passage size must be >= 1 and overlap in [0, size)")
    text = text.strip()
    spans, start = [], 0
    while True:
        end = _cut(text, start, start + size)
        spans.append((start, end))
        if end >= len(text):
            break
        start = _begin(text, max(end - overlap, start + 1), end)
    # A window inside a long run of whitespace holds nothing: it is not a passage.
    texts = [t for t in (text[a:b].strip() for a, b in spans) if t]
    return [Passage(f"{doc_id}#{n}", doc_id, n, t) for n, t in enumerate(texts)]
