"""Worker threads that carry their role down to the OS, so `top -H`, /proc and profilers show it.

Python before 3.14 names a thread only for itself: Linux shows every thread of a worker as
`crossrank`, so its CPU cannot be split by what each thread does without attaching a profiler.
A `NamedThread` also gives Linux its name (15 bytes at most there; the end is kept, since the
worker's names end in their role: `crossrank-minilm-l6-forward` shows as `nilm-l6-forward`).
Threads that native libraries start inherit the name of the thread that started them: the Rust
tokenizer's pool takes the name of whichever thread first tokenizes in parallel, and OpenMP's
teams those of the forward threads (`worker/bench/thread_cpu.py` counts them so).
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading

_PR_SET_NAME = 15  # prctl(2)
_LINUX_NAME_BYTES = 15


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl  # the C library the interpreter is linked with
    return None


_SET_NAME = _prctl()


def os_name(name: str) -> str:
    """The name Linux keeps for a thread called `name`: its last 15 bytes."""
    raw = name.encode()[-_LINUX_NAME_BYTES:]
    return raw.decode(errors="ignore")


def name_this_thread(name: str) -> None:
    """Give the calling thread `name` at the OS level too; does nothing where that is not supported."""
    if _SET_NAME is not None:
        _SET_NAME(_PR_SET_NAME, os_name(name).encode(), 0, 0, 0)


class NamedThread(threading.Thread):
    """A `threading.Thread` whose name the OS shows as well."""

    def run(self) -> None:
        name_this_thread(self.name)
        super().run()
