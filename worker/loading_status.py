"""What `crossrank serve` shows while its model loads: a spinner with the model, the device and the
seconds so far, then one line saying it is loaded. Loading takes 15-25 s on a CPU; without this
the terminal says nothing meanwhile.

In a terminal the spinner redraws itself; in a log file (under `crossrank up`, the demo, Docker)
the two plain lines are written instead.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions
from rich.text import Text

from crossrank.worker.settings import WorkerSettings

if TYPE_CHECKING:  # the engine imports torch, which takes seconds: the spinner starts before that
    from crossrank.worker.engine import Engine


class _Loading:
    """Rendered again at every refresh, so the device and the seconds stay current."""

    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.engine: Engine | None = None  # set once the server exists (importing torch comes first)
        self.started = time.monotonic()

    @property
    def device(self) -> str:
        placement = self.engine.placement if self.engine else None  # set once `auto` is resolved
        return f"{placement.device} ({placement.dtype_name})" if placement else self.settings.device

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        rest = f" on {self.device}  {self.elapsed:.0f}s"
        yield Text(f"loading {fit(self.settings.model, options.max_width - len(rest) - 9)}{rest}",
                   no_wrap=True, overflow="ellipsis")


def fit(name: str, width: int) -> str:
    """A model id or path cut from the left to `width` characters: its end names the model."""
    return name if len(name) <= width else "…" + name[-max(width - 1, 8):]


@contextlib.contextmanager
def loading_status(settings: WorkerSettings, console: Console | None = None) -> Iterator[_Loading]:
    """Show the spinner for the duration of the block, which sets `.engine` of what it gets and waits
    for that engine to be ready."""
    console = console or Console(stderr=True)
    loading = _Loading(settings)
    if not console.is_terminal:
        console.print(f"loading {settings.model} on {settings.device}...", highlight=False, soft_wrap=True)
    with console.status(loading, spinner="dots"):
        yield loading
    if loading.engine is not None and loading.engine.ready:
        console.print(f"loaded {settings.model} on {loading.device} in {loading.elapsed:.1f}s",
                      highlight=False, soft_wrap=True)
