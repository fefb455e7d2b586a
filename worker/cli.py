"""`crossrank serve`: run one worker on one device until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback

import click

from crossrank.common.logs import JsonLogFormatter as _JsonFormatter
from crossrank.common.logs import extra_fields as _fields
from crossrank.worker.cpu_threads import let_idle_threads_sleep
from crossrank.worker.settings import WorkerSettings


class _TextFormatter(logging.Formatter):
    """The usual line, with `extra=` fields appended as key=value so text logs carry request ids too."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return super().formatMessage(record) + "".join(f" {k}={v}" for k, v in _fields(record).items())


class _Role(logging.Filter):
    """Names the process's role on every line (core, frontend-N, serve) where `serve` runs several."""

    def __init__(self, role: str):
        super().__init__()
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self.role
        return True


def configure_logging(level: str, json_logs: bool, role: str = "") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if role:
        handler.addFilter(_Role(role))
    handler.setFormatter(_JsonFormatter() if json_logs else _TextFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Inputs longer than the model are tokenized whole on purpose (refused, or cut into windows,
    # before any reaches the model); transformers' warning about them would only mislead.
    logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)


def _resolve_frontends(settings: WorkerSettings) -> tuple[WorkerSettings, str]:
    """`--frontends auto` as a number, by the cores and the device, and why."""
    import dataclasses

    from crossrank.worker.engine.device import resolve_device
    from crossrank.worker.engine_core.sizing import auto_frontends

    on_gpu = settings.device.startswith("cuda") or (settings.device == "auto" and
                                                    resolve_device("auto").type == "cuda")
    count, why = auto_frontends(on_gpu, len(os.sched_getaffinity(0)))
    return dataclasses.replace(settings, frontends=str(count)), why


@click.command()
@WorkerSettings.options()  # every field a flag; the command gets the validated `settings`
@click.option("--verbose", is_flag=True, help="With an error that stops the worker, its traceback too.")
def serve(verbose: bool, settings: WorkerSettings) -> None:
    """Serve crossrank.v1.Reranker on one device, with health, reflection and metrics."""
    let_idle_threads_sleep()
    chosen = ""
    if settings.frontends == "auto":
        settings, chosen = _resolve_frontends(settings)
    configure_logging(settings.log_level, settings.json_logs, role="serve" if settings.frontend_count else "")
    log = logging.getLogger("crossrank.worker")
    log.info("settings: %s", settings.public())
    if chosen:
        log.info("--frontends auto: %d (%s)", settings.frontend_count, chosen)
    if settings.frontend_count:
        from crossrank.worker.engine_core.supervisor import serve_split

        code = serve_split(settings, lambda line: click.echo(line, err=True))
        logging.shutdown()
        sys.exit(code)

    from crossrank.worker.loading_status import loading_status

    with loading_status(settings) as loading:
        from crossrank.worker.server import create_server  # heavy: torch, transformers

        server = create_server(settings)
        loading.engine = server.engine
        if settings.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(settings.metrics_port, registry=server.engine.metrics.registry)
            log.info("metrics on :%d/metrics", settings.metrics_port)
        if server.http_port:
            log.info("http gateway on port %d (/v2/rerank, /rerank)", server.http_port)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        ready = threading.Thread(target=server.wait_ready, daemon=True)
        ready.start()
        while not stop.is_set() and ready.is_alive():
            stop.wait(0.2)
    if server.engine.load_error is not None:
        server.stop(0)
        if verbose:
            traceback.print_exception(server.engine.load_error)
        raise click.ClickException(f"could not load the model: {server.engine.load_error}")
    if not stop.is_set():
        log.info("serving on port %d", server.port)
        http = f", http on port {server.http_port}" if server.http_port else ""
        click.echo(f"crossrank worker ready on port {server.port}{http}", err=True)
        stop.wait()
    log.info("stopping (grace %.1fs)", settings.grace_seconds)
    server.stop()
    log.info("stopped")
    # A handler thread inside a tokenizer call cannot be interrupted, and Python would wait for it
    # at exit; everything it could still answer has been answered or refused by now.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
