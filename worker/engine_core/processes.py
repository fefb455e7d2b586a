"""The two kinds of child process `crossrank serve --frontends N` runs: the engine core and a frontend.

Each is started by the supervisor (`supervisor.py`) with the `spawn` method, so it begins with a
fresh interpreter: no torch state, no threads and no sockets inherited from the parent. Each dies
with its parent (PR_SET_PDEATHSIG), stops cleanly on SIGTERM, and says it is ready by creating
its file `ready` (no semaphore to leak when a process is killed).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import threading
from pathlib import Path

from crossrank.worker.settings import WorkerSettings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _child(role: str, settings: WorkerSettings) -> threading.Event:
    """Set up a child process: its log lines name its role, it dies with its parent, SIGTERM stops it."""
    from crossrank.worker.cli import configure_logging
    from crossrank.worker.cpu_threads import let_idle_threads_sleep

    let_idle_threads_sleep()
    configure_logging(settings.log_level, settings.json_logs, role=role)
    # tqdm's default lock is a multiprocessing one, a semaphore the parent's resource tracker would report
    # as leaked once this process ends by os._exit (or a kill); its bars here need only a thread lock.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the supervisor's SIGTERM still stops it
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the supervisor, which stops us
    return stop


def addresses(folder: Path) -> tuple[str, str]:
    """The core's two sockets in the supervisor's private folder: requests in, replies and status out."""
    return f"ipc://{folder}/requests", f"ipc://{folder}/replies"


def link_name(index: int, pid: int) -> str:
    """A frontend's name on the core's link: its pid in it, so a frontend started again is a new one."""
    return f"frontend-{index}-{pid}"


def ready_file(folder: Path, role: str) -> Path:
    return folder / f"ready-{role}"


def run_core(settings: WorkerSettings, folder: Path) -> None:
    """The engine core: load, pin and warm the models, then batch and run what the frontends send."""
    stop = _child("core", settings)
    from crossrank.worker.engine import Engine
    from crossrank.worker.engine_core.metrics import serve_private
    from crossrank.worker.engine_core.server import CoreServer

    engine = Engine(dataclasses.replace(settings, tokenizer_workers=1))  # requests arrive tokenized
    link = CoreServer(engine, *addresses(folder)).start()
    if settings.metrics_port:
        serve_private(engine.metrics.registry, folder, "core")
    try:
        engine.load()
    except BaseException as exc:  # said to the frontends and the supervisor, then this process ends
        engine.load_error = exc
        log.error("could not load the model: %s", exc)
        stop.wait(2.0)  # long enough for the status that carries the error to reach the frontends
        link.stop()
        raise SystemExit(3) from None
    ready_file(folder, "core").touch()
    stop.wait()
    log.info("stopping")
    engine.stop()
    link.stop()
    _exit()


def run_frontend(settings: WorkerSettings, index: int, folder: Path) -> None:
    """A frontend: the gRPC server and the HTTP gateway, tokenizing, admitting and ranking.

    Frontend 0 binds its ports at once and says NOT_SERVING while the core loads, as one process
    does. The others, and any frontend started again, bind only once ready, so that SO_REUSEPORT
    never hands a connection to a frontend that cannot serve it.
    """
    role = f"frontend-{index}"
    stop = _child(role, settings)
    import torch
    from grpc_health.v1 import health_pb2

    from crossrank.worker.engine import Engine
    from crossrank.worker.engine_core.client import CoreClient
    from crossrank.worker.engine_core.metrics import serve_private
    from crossrank.worker.grpc.server import set_health
    from crossrank.worker.server import create_server

    torch.set_num_threads(1)  # a frontend runs no model: no thread pool to keep
    ready = ready_file(folder, role)
    core = CoreClient(*addresses(folder), name=link_name(index, os.getpid()))
    # The cores but one are the tokenizers' (as in one process), shared among the frontends.
    tokenizers = settings.tokenizer_workers or max(1, (len(os.sched_getaffinity(0)) - 1) // settings.frontend_count)
    engine = Engine(dataclasses.replace(settings, metrics_port=0, tokenizer_workers=tokenizers), core=core)
    if settings.metrics_port:
        serve_private(engine.metrics.registry, folder, role)
    if index > 0 or ready.exists():
        try:
            engine.load()
        except BaseException as exc:
            log.error("could not start: %s", exc)
            raise SystemExit(3) from None
    server = create_server(engine.settings, engine=engine)
    # Not ready with no error of its own: this frontend is up, and the core died since it answered; that is the
    # core's restart to wait for (below), not a failure to start, which would make `serve` give up on the worker.
    if not server.wait_ready() and engine.load_error is not None:
        log.error("could not start: %s", engine.load_error)
        server.stop(0)
        raise SystemExit(3)
    ready.touch()
    serving = True
    while True:  # the core's health is this frontend's
        if engine.ready != serving:
            serving = engine.ready
            log.warning("the engine core is %s", "back: serving" if serving else "gone: NOT_SERVING")
            set_health(server.health, health_pb2.HealthCheckResponse.SERVING if serving
                       else health_pb2.HealthCheckResponse.NOT_SERVING)
        if stop.wait(0.1):
            break
    log.info("stopping (grace %.1fs)", settings.grace_seconds)
    server.stop()
    core.stop()
    _exit()


def _exit() -> None:
    """End now: a handler thread inside a tokenizer call cannot be interrupted, and Python would wait for
    it at exit; everything it could still answer has been answered or refused by now (as `serve` does)."""
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
