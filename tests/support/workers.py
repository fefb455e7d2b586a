"""Real workers for tests: settings for an in-process one, `crossrank serve` as a subprocess."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from crossrank.common.net import free_port, health_status


def worker_settings(cross_encoder: Path, bi_encoder: Path | None = None, **overrides):
    from crossrank.worker.settings import WorkerSettings

    values = dict(host="127.0.0.1", port=0, model=str(cross_encoder),
                  embed_model=str(bi_encoder) if bi_encoder else "none", device="cpu", dtype="fp32",
                  grace_seconds=0.5)
    values.update(overrides)
    return WorkerSettings(**values)


def crossrank_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "crossrank.client.cli", *args]


def stop_process(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class WorkerProcess:
    """`crossrank serve` as a real subprocess on a free port."""

    def __init__(self, cross_encoder: Path, bi_encoder: Path | None, port: int | None = None, *extra: str,
                 env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--model", str(cross_encoder),
                "--embed-model", str(bi_encoder) if bi_encoder else "none", "--device", "cpu", "--dtype", "fp32",
                "--grace-seconds", "1", *extra]
        log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"crossrank-worker-{self.port}.log"
        self.log = open(log_path, "w+")  # noqa: SIM115 (open for the process's lifetime)
        self.proc = subprocess.Popen(crossrank_command(*args), stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})

    def wait_serving(self, timeout: float = 120, ca_cert: Path | None = None) -> None:
        """Health SERVING; over TLS, trusting `ca_cert`, for a worker started with --tls-cert."""
        import grpc

        deadline = time.monotonic() + timeout
        channel = (grpc.secure_channel(self.address, grpc.ssl_channel_credentials(ca_cert.read_bytes()))
                   if ca_cert else grpc.insecure_channel(self.address))
        with channel:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.output()
                try:
                    if health_status(channel) == "SERVING":
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"worker on {self.address} not serving after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


@contextlib.contextmanager
def serving_worker(cross_encoder: Path, bi_encoder: Path | None = None, *extra: str,
                   ca_cert: Path | None = None) -> Iterator[WorkerProcess]:
    """A `crossrank serve` subprocess, yielded once it is SERVING and stopped afterwards."""
    process = WorkerProcess(cross_encoder, bi_encoder, None, *extra)
    try:
        process.wait_serving(ca_cert=ca_cert)
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def worker_in_process(cross_encoder: Path, bi_encoder: Path | None = None, **overrides) -> Iterator:
    """An in-process worker (`create_server`), yielded once its model is loaded and stopped afterwards."""
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(cross_encoder, bi_encoder, **overrides))
    try:
        assert server.wait_ready(120), server.engine.load_error
        yield server
    finally:
        server.stop(0)
