"""The worker as a process of its own (`crossrank serve`), for the rows that charge the worker's CPU.

In-process runs share one interpreter between the clients and the worker, so their CPU time
is both sides'. This one starts the real command, drives it over loopback, and reads the CPU
time of its whole process tree (psutil), which counts any child process the worker starts.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from crossrank.common.net import free_port, health_status


def process_tree(pid: int) -> list:
    """A process and every descendant alive now (psutil.Process objects)."""
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and every descendant alive now."""
    import psutil

    total = 0.0
    for proc in process_tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclass
class ServedWorker:
    address: str
    pid: int

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)


@contextlib.contextmanager
def served_worker(args: list[str], timeout: float = 1800, python: str = sys.executable,
                  env: dict[str, str] | None = None) -> Iterator[ServedWorker]:
    """`crossrank serve ARGS` on a free loopback port, yielded once health says SERVING.

    `python` may be another checkout's interpreter (a before/after comparison); `env` adds variables.
    """
    port = free_port()
    command = [python, "-m", "crossrank.client.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            address = f"127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            with grpc.insecure_channel(address) as channel:
                while True:
                    if proc.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(f"crossrank serve exited with {proc.returncode}:\n{log.read()[-3000:]}")
                    with contextlib.suppress(grpc.RpcError):
                        if health_status(channel) == "SERVING":
                            break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"crossrank serve not serving after {timeout:.0f}s")
                    time.sleep(0.2)
            yield ServedWorker(address, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
