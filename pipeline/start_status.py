"""What `crossrank up` and `crossrank demo` show while their stack starts: a spinner naming the
services still starting (for gRPC workers: the model they load, and the device) with the seconds
so far, and a line as each one is ready. Loading a model takes 15-25 s on a CPU."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from rich.console import Console
from rich.status import Status

from crossrank.pipeline.local_process import LocalProcess
from crossrank.pipeline.stack import LocalStack, grpc_serving


def _tier(process: LocalProcess) -> str:
    return process.name.rsplit("-", 1)[0]  # worker-0 -> worker


class _Watcher:
    """Follows the stack as it starts: a gRPC worker is ready when its health says SERVING, any other
    service when the stack has gone on to start the next tier (it waits for each tier to be healthy)."""

    def __init__(self, stack: LocalStack, console: Console, status: Status):
        self.stack, self.console, self.status = stack, console, status
        self.started: dict[str, float] = {}
        self.reported: set[str] = set()
        self.done = threading.Event()

    def describe(self, processes: list[LocalProcess]) -> str:
        """`worker-0, worker-1 (model on device)`, or the names of other services."""
        names = ", ".join(p.name for p in processes)
        if any(_tier(p) != "worker" for p in processes):
            return names
        # `up` and `demo` always name the model (from their settings); a stack made without one starts
        # workers that read it from their own environment.
        model = self.stack.model or "the model of CROSSRANK_MODEL, or the default"
        device = "" if self.stack.device == "auto" else f" on {self.stack.device}"
        return f"{names} ({model}{device})"

    def _ready(self, process: LocalProcess, processes: list[LocalProcess]) -> bool:
        if _tier(process) == "worker":
            i = int(process.name.rsplit("-", 1)[1])
            with contextlib.suppress(Exception):  # any failure of the probe means "not yet"
                return i < len(self.stack.worker_addresses) and grpc_serving(self.stack.worker_addresses[i])
            return False
        return any(_tier(later) != _tier(process) for later in processes[processes.index(process):])

    def report(self, process: LocalProcess) -> None:
        took = time.monotonic() - self.started[process.name]
        self.console.print(f"[green]✓[/green] {self.describe([process])} ready ({took:.1f}s)", highlight=False,
                           soft_wrap=True)
        self.reported.add(process.name)

    def step(self, everything_ready: bool = False) -> None:
        processes = list(self.stack.processes)
        for process in processes:
            self.started.setdefault(process.name, time.monotonic())
        waiting = [p for p in processes if p.name not in self.reported]
        for process in waiting:
            if everything_ready or self._ready(process, processes):
                self.report(process)
        waiting = [p for p in waiting if p.name not in self.reported]
        if waiting:
            since = min(self.started[p.name] for p in waiting)
            verb = "loading" if _tier(waiting[0]) == "worker" else "starting"
            self.status.update(f"{verb} {self.describe(waiting)}  {time.monotonic() - since:.0f}s")

    def run(self) -> None:
        while not self.done.wait(0.3):
            self.step()


@contextlib.contextmanager
def start_status(stack: LocalStack, console: Console | None = None) -> Iterator[None]:
    """Show the spinner while the block starts `stack`; once it has started, every service is ready."""
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
        watcher.step(everything_ready=True)
