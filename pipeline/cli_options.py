"""Click options shared by the pipeline's commands: where Redis and Chroma are, and the workers."""

from __future__ import annotations

import functools

import click

from crossrank.client.cli_options import worker_options
from crossrank.pipeline.settings import PipelineSettings, SettingsError


def pipeline_options(fn):
    """--redis-url, --chroma-url, --chroma-path and the worker options; passes `settings` instead."""

    @click.option("--redis-url", envvar="CROSSRANK_REDIS_URL", default=None, show_envvar=True,
                  help="Broker and job state [default: redis://localhost:6379/0].")
    @click.option("--chroma-url", envvar="CROSSRANK_CHROMA_URL", default=None, show_envvar=True,
                  help="Chroma server (chroma run); empty: embedded Chroma at --chroma-path.")
    @click.option("--chroma-path", envvar="CROSSRANK_CHROMA_PATH", default=None, show_envvar=True,
                  help="Embedded Chroma folder [default: ./data/chroma].")
    @worker_options
    @functools.wraps(fn)
    def wrapper(*args, redis_url, chroma_url, chroma_path, target, token, ca_cert, timeout, **kwargs):
        try:
            settings = PipelineSettings.from_env(redis_url=redis_url, chroma_url=chroma_url, chroma_path=chroma_path,
                                                 worker_target=target, auth_token=token, tls_ca=ca_cert,
                                                 timeout=timeout)
        except SettingsError as exc:
            raise click.BadParameter(str(exc)) from exc
        return fn(*args, settings=settings, **kwargs)

    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
