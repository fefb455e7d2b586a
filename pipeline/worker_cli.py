"""`crossrank pipeline worker`: a Celery worker for the index and rerank queues.

The same as `celery -A crossrank.pipeline worker -Q index,rerank`, with crossrank's defaults
(prefetch 1, late acks) and an optional Prometheus endpoint for the pipeline's metrics.
"""

from __future__ import annotations

import logging

import click
from celery.signals import worker_ready

from crossrank.client.cli_options import Group
from crossrank.pipeline.celery_app import QUEUES
from crossrank.pipeline.cli_options import worker_options

log = logging.getLogger("crossrank.pipeline")


@click.group("pipeline", cls=Group)
def pipeline() -> None:
    """Run the bulk pipeline's Celery workers."""


@pipeline.command("worker")
@click.option("--queues", "-Q", default=",".join(QUEUES), show_default=True,
              help="Comma-separated queues to take tasks from: index, rerank or both.")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Pool processes [default: 1 with embedded Chroma, else the number of CPUs].")
@click.option("--hostname", "-n", default=None, help="Node name, e.g. pipeline-1@%h.")
@click.option("--loglevel", "-l", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              default="INFO", show_default=True, help="Least severe log lines shown.")
@worker_options
def worker(queues, concurrency, hostname, loglevel, settings) -> None:
    """Take index and rerank tasks from Redis until stopped (SIGTERM finishes the current task)."""
    from crossrank.pipeline.celery_app import configure

    unknown = {q.strip() for q in queues.split(",")} - set(QUEUES)
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(sorted(unknown))}: use index and/or rerank",
                                 param_hint="--queues")
    if concurrency and concurrency > 1 and not settings.chroma_url:
        raise click.BadParameter("embedded Chroma (CROSSRANK_CHROMA_PATH) takes one writing process; set "
                                 "CROSSRANK_CHROMA_URL to a `chroma run` server for more", param_hint="--concurrency")
    app = configure(settings)
    worker_ready.connect(lambda **_: log.info("settings: %s", settings.public()), weak=False)
    if settings.json_logs:
        from crossrank.pipeline.logs import use_json_logs

        use_json_logs()
    if settings.pipeline_metrics_port:
        from crossrank.pipeline.metrics import serve_metrics

        serve_metrics(settings.pipeline_metrics_port, settings)
    argv = ["worker", "--queues", queues, "--loglevel", loglevel, "--prefetch-multiplier", "1"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv)
