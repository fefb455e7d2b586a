"""`crossrank up` (the compose topology as local processes, until Ctrl-C) and `crossrank demo`."""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click

from crossrank.common.settings import SettingsError, click_option, settings_field
from crossrank.pipeline.masking import mask_url, write_env_file
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.stack import LocalStack, ServiceFailed
from crossrank.pipeline.start_status import start_status
from crossrank.worker.settings import WorkerSettings  # light: dataclasses, no torch


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT stop the stack the way Ctrl-C does, so `kill` leaves no process behind
    either; SIGINT explicitly, because a shell without job control starts `crossrank up &` with
    SIGINT ignored."""

    def interrupt(*_):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stack_options(fn):
    """Model, device and Redis options shared by `up` and `demo`, generated from the worker's and the pipeline's
    settings (flag, variable, default); the values go to the processes the stack starts."""
    for option in reversed([
        click_option(settings_field(WorkerSettings, "model")),
        click_option(settings_field(WorkerSettings, "embed_model")),
        click_option(settings_field(WorkerSettings, "device"), help="auto, cpu, cuda:N, or cuda to put worker i "
                     "on cuda:i."),
        click_option(settings_field(PipelineSettings, "redis_url"), help="up: used if Redis answers there, else a "
                     "private redis-server starts. demo: a private redis-server, else an empty database of this "
                     "Redis."),
        click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Keep logs and Chroma data here (default: a new temporary folder; `up` keeps its logs, "
                          "the demo removes it)."),
    ]):
        fn = option(fn)
    return fn


def _check(model: str, embed_model: str, device: str, redis_url: str) -> None:
    """Refuse, in one line, a value the workers or the pipeline would refuse once started."""
    try:
        WorkerSettings(model=model, embed_model=embed_model, device=device).validate()
        PipelineSettings(redis_url=redis_url).validate()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _start(stack: LocalStack) -> LocalStack:
    click.echo(f"starting {stack.workers} worker(s) and {stack.pipeline_workers} pipeline worker(s)...", err=True)
    try:
        with start_status(stack):
            return stack.start()
    except ServiceFailed as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="gRPC workers.")
@click.option("--pipeline-workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Celery workers.")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes per Celery worker.")
@stack_options
def up(workers, pipeline_workers, concurrency, model, embed_model, device, redis_url, workdir) -> None:
    """Run Redis, Chroma, gRPC workers and Celery workers as local processes until Ctrl-C."""
    _check(model, embed_model, device, redis_url)
    own_workdir = workdir is None  # then a new folder, whose logs outlive the stack
    workdir = workdir or Path(tempfile.mkdtemp(prefix="crossrank-up-"))
    stack = LocalStack(workers=workers, pipeline_workers=pipeline_workers, model=model, embed_model=embed_model,
                       device=device, redis_url=redis_url, concurrency=concurrency, workdir=workdir)
    with sigterm_as_interrupt():
        try:
            _start(stack)
            env_file = write_env_file(stack.workdir / "crossrank.env", stack.env)
            click.echo(f"crossrank stack ready; in another shell, `source {env_file}` or:\n")
            for name, value in stack.env.items():
                if value:
                    click.echo(f"export {name}={mask_url(value)}")
            click.echo(f"\nlogs: {stack.workdir / 'logs'}\nCtrl-C stops everything.", err=True)
            while not (exited := stack.check()):
                time.sleep(1)
            raise click.ClickException(f"{', '.join(exited)} exited; stopping the stack (logs are in "
                                       f"{stack.workdir / 'logs'})")
        except KeyboardInterrupt:
            click.echo("stopping...", err=True)
        finally:
            stack.stop()
            if own_workdir:  # the data went with the services; the logs stay where `up` said
                for data in ("chroma", "redis"):
                    shutil.rmtree(workdir / data, ignore_errors=True)
            click.echo(f"stopped; the logs are kept in {workdir / 'logs'}", err=True)


@click.command()
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="Results per query.")
@stack_options
def demo(top_k, model, embed_model, device, redis_url, workdir) -> None:
    """Start a local stack, index a small Chinese and English corpus, rerank sample queries, print, stop."""
    from crossrank.pipeline.demo import demo_redis, run_demo

    _check(model, embed_model, device, redis_url)
    with sigterm_as_interrupt(), demo_redis(redis_url) as own_redis:
        stack = LocalStack(workers=1, pipeline_workers=1, model=model, embed_model=embed_model, device=device,
                           redis_url=own_redis, workdir=workdir, embedded_chroma=True)
        try:
            _start(stack)
            run_demo(stack, top_k=top_k)
        finally:
            stack.stop()
