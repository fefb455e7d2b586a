"""What `crossrank up` and `crossrank demo` show while their stack starts: a spinner naming the
service being started (for a gRPC worker: the model it loads and the device) with the seconds so
far, and a line as each service is ready. Loading a model takes 15-25 s on a CPU."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

from rich.console import Console
from rich.status import Status

from crossrank.pipeline.stack import LocalStack


class _Watcher:
    """Follows `stack.processes` as the stack starts them: each service is ready when the next one starts."""

    def __init__(self, stack: LocalStack, console: Console, status: Status):
        self.stack, self.console, self.status = stack, console, status
        self.reported = 0
        self.since = time.monotonic()
        self.done = threading.Event()

    def describe(self, name: str) -> str:
        if not name.startswith("worker-"):
            return name
        model = self.stack.model or os.environ.get("CROSSRANK_MODEL") or "the default model"
        device = f"cuda:{name.split('-')[1]}" if self.stack.device == "cuda" else self.stack.device
        return f"{name}: {model} on {device}"

    def report_ready(self, upto: int) -> None:
        now = time.monotonic()
        for process in self.stack.processes[self.reported:upto]:
            self.console.print(f"[green]✓[/green] {self.describe(process.name)} ready ({now - self.since:.1f}s)",
                               highlight=False)
        if upto > self.reported:
            self.reported, self.since = upto, now

    def run(self) -> None:
        while not self.done.wait(0.2):
            processes = list(self.stack.processes)
            if processes:
                self.report_ready(len(processes) - 1)
                verb = "loading" if processes[-1].name.startswith("worker-") else "starting"
                self.status.update(f"{verb} {self.describe(processes[-1].name)}  "
                                   f"{time.monotonic() - self.since:.0f}s")


@contextlib.contextmanager
def start_status(stack: LocalStack, console: Console | None = None) -> Iterator[None]:
    """Show the spinner while the block starts `stack`; once it has started, a line per service."""
    console = console or Console(stderr=True)
    with console.status("preparing...", spinner="dots") as status:
        watcher = _Watcher(stack, console, status)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            watcher.done.set()
            thread.join()
    if stack.processes:
        watcher.report_ready(len(stack.processes))
