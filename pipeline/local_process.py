"""One service of a local stack as a child process: started in its own process group, polled
until healthy, stopped with SIGTERM and then SIGKILL.

Each child leads its own process group so that Ctrl-C in a terminal reaches only the launcher,
which then stops the services in order (pipeline workers before the gRPC workers they call),
and so that SIGKILL also reaches grandchildren such as Celery's pool processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ServiceFailed(RuntimeError):
    """A service exited or did not become healthy; the message ends with its log."""


class LocalProcess:
    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._env = env
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> LocalProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self._env, start_new_session=True)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_healthy(self, check: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
        """Poll `check` until it returns True; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ServiceFailed(f"{self.name} exited with code {self.proc.returncode}; its log "
                                    f"({self.log_path}):\n{self.log_tail()}")
            try:
                if check():
                    return
            except Exception:  # any failure of a probe means "not yet"
                pass
            time.sleep(interval)
        raise ServiceFailed(f"{self.name} not healthy after {timeout:.0f}s; its log ({self.log_path}):\n"
                            f"{self.log_tail()}")

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the service, wait up to `grace`, then SIGKILL its whole process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        # Whatever is left of the group (the service itself after the grace, or its children).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
