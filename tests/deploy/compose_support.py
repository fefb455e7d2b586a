"""The compose files as Compose would merge them, and resolvers that check a container's command
against the package's entry points (used by the deployment tests and their conftest).

Docker cannot run here, so the files are read with PyYAML (anchors and merge keys are YAML; `!reset`
and `!override` are Compose's tags, handled below) and `${NAME:-default}` is resolved the way
`docker compose config` resolves it with NAME unset.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import shlex
from pathlib import Path

import click
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker-compose.yml"
CPU = "docker-compose.cpu.yml"
GPUS = "docker-compose.gpus.yml"
COMPOSE_FILES = (BASE, CPU, GPUS)
# The ways the stack is meant to be started: `docker compose -f ... up`.
VARIANTS = {"gpu": (BASE,), "cpu": (BASE, CPU), "gpus": (BASE, GPUS)}
# Commands that only consume settings defined by other commands; their flags' variables don't count.
CONSUMERS = {"up", "demo"}
# Compose merges these sequences from an override file into the base one instead of replacing them.
_MERGED_LISTS = {"ports", "volumes", "expose", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop", "devices",
                 "env_file", "secrets", "configs", "profiles", "extra_hosts", "external_links", "security_opt"}


class Reset:
    """Compose's `!reset`: the key is removed from the merged model."""


class Override:
    """Compose's `!override`: the value replaces the base file's instead of merging with it."""

    def __init__(self, value):
        self.value = value


class _ComposeLoader(yaml.SafeLoader):
    pass


def _override(loader: yaml.Loader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


_ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())
_ComposeLoader.add_constructor("!override", _override)


def load_compose(name: str) -> dict:
    with open(ROOT / name, encoding="utf-8") as f:
        return yaml.load(f, Loader=_ComposeLoader)


def _plain(node):
    """A tree with the tags resolved the way a lone file is read (`!reset` gone, `!override` its value)."""
    if isinstance(node, dict):
        return {k: _plain(v.value if isinstance(v, Override) else v) for k, v in node.items()
                if not isinstance(v, Reset)}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def merge(base: dict, override: dict) -> dict:
    """Compose's merge of an override file: mappings key by key, the lists of `_MERGED_LISTS` joined,
    anything else replaced; `!reset` removes a key and `!override` replaces it whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Reset):
            merged.pop(key, None)
        elif isinstance(value, Override):
            merged[key] = _plain(value.value)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list) and key in _MERGED_LISTS:
            merged[key] = merged[key] + [v for v in _plain(value) if v not in merged[key]]
        else:
            merged[key] = _plain(value)
    return merged


def compose_model(*files: str) -> dict:
    """The model `docker compose -f A -f B ...` works on, before interpolation."""
    model = _plain(load_compose(files[0]))
    for name in files[1:]:
        model = merge(model, load_compose(name))
    return model


# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, $NAME, and $$ for a literal dollar.
_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def variables(value: str) -> list[tuple[str, str | None]]:
    """(name, operator) of every variable a string interpolates; `$$` is no variable."""
    return [(m.group(2) or m.group(5), m.group(3)) for m in _VARIABLE.finditer(value) if not m.group(1)]


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """A string as Compose resolves it with `env` as the shell's variables (none by default)."""
    env = env or {}

    def resolve(m: re.Match) -> str:
        if m.group(1):
            return "$"
        name, op, word = m.group(2) or m.group(5), m.group(3), m.group(4) or ""
        given = env.get(name)
        if op is None:
            return given or ""
        if op == ":-":
            return given if given else word
        if op == "-":
            return word if given is None else given
        if op == ":+":
            return word if given else ""
        if op == "+":
            return "" if given is None else word
        if op in (":?", "?") and not given:
            raise KeyError(f"{name} is required: {word}")
        return given

    return _VARIABLE.sub(resolve, value)


def resolved(node, env: dict[str, str] | None = None):
    """A whole tree interpolated."""
    if isinstance(node, dict):
        return {k: resolved(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v, env) for v in node]
    return interpolate(node, env) if isinstance(node, str) else node


def strings(node) -> list[str]:
    """Every string in a YAML tree, keys included."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def environment(service: dict) -> dict[str, str]:
    """A service's environment as a mapping (Compose accepts a mapping or a list of NAME=value)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def argv(command) -> list[str]:
    """A command or healthcheck test as an argument list; CMD-SHELL keeps its first pipe stage."""
    if isinstance(command, str):
        return shlex.split(command)
    if command and command[0] == "CMD":
        return list(command[1:])
    if command and command[0] == "CMD-SHELL":
        return shlex.split(re.split(r"\s[|&;]+\s", command[1])[0])
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
