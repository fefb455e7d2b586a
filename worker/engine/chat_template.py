"""A reranker's chat template, rendered once per instruction into the text around a pair.

Causal-LM rerankers (Qwen3-Reranker and the like) read a (query, document) pair through a chat
template: sentence-transformers maps the pair to a "query" and a "document" message, an
instruction to a system message before them, and renders the conversation with the
tokenizer's template (`base/modules/transformer.py`, `Transformer.preprocess`). Rendering
Jinja for every pair would cost more than tokenizing it, so the template is rendered once per
instruction with markers in place of the query and the document, and split around them:
every pair is then `head + query + middle + document + tail`, tokenized as one text, as
sentence-transformers tokenizes the rendered conversation.

Truncation keeps the template's suffix (the assistant prefill whose last token the model
scores), the same way sentence-transformers 5.6+ restores it (`_restore_chat_template_suffix`):
the suffix is the common token tail of two renders with different fillers, and a row that
is too long keeps its first `max_length - len(suffix)` tokens followed by the suffix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossrank.worker.errors import ModelRefusedError

_QUERY, _DOCUMENT = "\x02crossrank-query\x03", "\x02crossrank-document\x03"
_FRAMES_KEPT = 256  # instructions whose frames are kept; clients may send any number of them
# Contents a template must place word for word: spaces and line breaks at the edges catch a `trim`.
_SAMPLES = (("a b", "c"), ("", ""), (" a\n", "\n b c "))


@dataclass(frozen=True)
class Frame:
    """The text around one pair under one instruction, and the token tail truncation keeps."""

    head: str
    middle: str
    tail: str
    suffix: np.ndarray

    def text(self, query: str, document: str) -> str:
        return self.head + query + self.middle + document + self.tail


class ChatTemplate:
    """Renders pairs the way the model's own `Transformer` module does, through its input formatter."""

    def __init__(self, transformer: Any, tokenize: Callable[[list[str]], list[list[int]]]):
        self._formatter = transformer.input_formatter
        self._tokenizer = transformer.tokenizer
        options = dict((transformer.processing_kwargs or {}).get("chat_template", {}))
        options.pop("restore_suffix", None)
        self._options = options
        self._tokenize = tokenize
        self._frames: dict[str | None, Frame] = {}
        self._lock = threading.Lock()
        self.name = getattr(transformer.config, "name_or_path", "") or "the model"
        self.takes_instruction = self._renders_instruction()

    def _renders_instruction(self) -> bool:
        """Whether a system message changes the render; templates may also refuse one (Gemma's do)."""
        try:
            return self._render("crossrank instruction probe", "q", "d") != self._render(None, "q", "d")
        except Exception:  # noqa: BLE001 (Jinja raises whatever the template says)
            return False

    def _render(self, prompt: str | None, query: str, document: str) -> str:
        messages = [self._formatter.pair_to_messages((query, document))]
        if prompt:
            messages = self._formatter.prepend_prompt_to_messages(messages, prompt)
        return self._tokenizer.apply_chat_template(messages[0], tokenize=False, **self._options)

    def frame(self, prompt: str | None) -> Frame:
        """The frame for an instruction (None: none), made on first use and kept."""
        frame = self._frames.get(prompt)
        if frame is None:
            with self._lock:
                frame = self._frames.get(prompt) or self._make(prompt)
                if len(self._frames) >= _FRAMES_KEPT:
                    self._frames.pop(next(iter(self._frames)))  # the oldest
                self._frames[prompt] = frame
        return frame

    def _make(self, prompt: str | None) -> Frame:
        rendered = self._render(prompt, _QUERY, _DOCUMENT)
        if (
            rendered.count(_QUERY) != 1
            or rendered.count(_DOCUMENT) != 1
            or rendered.find(_QUERY) > rendered.find(_DOCUMENT)
        ):
            raise ModelRefusedError(
                f"the chat template of {self.name} does not render the query once, then the "
                "document once; crossrank cannot serve it"
            )
        head, rest = rendered.split(_QUERY)
        middle, tail = rest.split(_DOCUMENT)
        frame = Frame(head, middle, tail, np.zeros(0, dtype=np.int64))
        for query, document in _SAMPLES:
            if frame.text(query, document) != self._render(prompt, query, document):
                raise ModelRefusedError(
                    f"the chat template of {self.name} changes the query or document text as it "
                    "renders them; crossrank cannot serve it"
                )
        # As sentence-transformers derives it: the common token tail of two renders with different fillers.
        first, second = self._tokenize([frame.text("0", "0"), frame.text("1 2 3 4", "1 2 3 4")])
        count = 0
        for left, right in zip(reversed(first), reversed(second), strict=False):
            if left != right:
                break
            count += 1
        suffix = first[len(first) - count :] if 0 < count < min(len(first), len(second)) else []
        return Frame(head, middle, tail, np.asarray(suffix, dtype=np.int64))
