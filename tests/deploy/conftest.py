"""Fixtures for the deployment tests: the compose files as Docker Compose resolves them (per way of
starting the stack) and the CROSSRANK_* names the code reads."""

from __future__ import annotations

import shutil

import click
import pytest
from support.compose import (
    BASE,
    CONSUMERS,
    VARIANTS,
    click_envvars,
    compose_config,
    settings_envvars,
)


@pytest.fixture
def compose() -> dict:
    """docker-compose.yml alone, every profile on."""
    return compose_config(BASE)


@pytest.fixture(params=sorted(VARIANTS))
def variant(request) -> tuple[str, dict]:
    """(name, model) of each way to start the stack, its override files merged in by Compose."""
    return request.param, compose_config(*VARIANTS[request.param])


@pytest.fixture(scope="session")
def known_settings() -> set[str]:
    """Every CROSSRANK_* name the package reads: the flags' variables of every `crossrank` command
    (the worker's settings, the client's, the pipeline's) and the fields of the settings objects."""
    from crossrank.client.cli import main

    ctx = click.Context(main)
    names = set()
    for name in main.list_commands(ctx):
        if name not in CONSUMERS:
            names |= click_envvars(main.get_command(ctx, name))
    names |= settings_envvars("crossrank.worker.settings")
    names |= settings_envvars("crossrank.pipeline.settings")
    return names


@pytest.fixture(scope="session")
def worker_envvars() -> set[str]:
    """What `crossrank serve` reads."""
    from crossrank.worker.cli import serve

    return click_envvars(serve)


@pytest.fixture(scope="session")
def pipeline_envvars() -> set[str]:
    """What the pipeline's processes read: its settings object (one for workers, CLI and Flower) and
    the flags of `crossrank pipeline ...`."""
    from crossrank.pipeline.worker_cli import pipeline

    return settings_envvars("crossrank.pipeline.settings") | click_envvars(pipeline)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    """A throwaway redis-server on a free port, shared with nothing: its db 0 (this URL's) is empty."""
    from support.redis_server import start_redis_server

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server on the PATH")
    url, proc = start_redis_server(server, str(tmp_path_factory.mktemp("redis")))
    try:
        yield f"{url}/0"
    finally:
        proc.terminate()
        proc.wait(10)
