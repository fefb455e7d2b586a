"""One place for each setting: the settings objects, the flags `--help` shows, and the README's
configuration tables agree; importing reads no environment; a bad value is one line at start-up."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import click
import pytest
from support.paths import ROOT
from support.workers import crossrank_command

from crossrank.client.settings import ClientSettings, variable
from crossrank.pipeline.settings import PipelineSettings
from crossrank.worker.bench.settings import BenchSettings
from crossrank.worker.settings import WorkerSettings

README = (ROOT / "README.md").read_text(encoding="utf-8")
SETTINGS = (ClientSettings, PipelineSettings, WorkerSettings, BenchSettings)
# Every CROSSRANK_* variable the code reads, each set to a value no setting accepts.
STACK_COMMANDS = {"up", "demo"}
BROKEN = {variable(f): "%broken%" for cls in SETTINGS for f in dataclasses.fields(cls)}


def _fields(*classes: type) -> dict[str, dataclasses.Field]:
    return {variable(f): f for cls in classes for f in dataclasses.fields(cls)}


def _commands() -> list[tuple[str, click.Command]]:
    from crossrank.client.cli import main

    found, todo = [], [("", main)]
    while todo:
        path, command = todo.pop()
        found.append((path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            todo += [(f"{path} {name}".strip(), command.get_command(ctx, name)) for name in command.list_commands(ctx)]
    return found


def _readme_rows() -> dict[str, list[str]]:
    """Configuration table rows by variable: their cells, backticks stripped."""
    rows = {}
    for line in README.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split(" | ")]
        names = [c for c in cells if re.fullmatch(r"CROSSRANK_[A-Z_]+", c)]
        if line.startswith("|") and names:
            rows[names[0]] = cells
    return rows


def test_importing_any_module_reads_no_environment():
    modules = []
    for folder in ("common", "protos", "worker", "client", "pipeline"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] != "__main__" and not any(p.startswith((".", "node_modules")) for p in parts):
                parts = parts[:-1] if parts[-1] == "__init__" else parts
                modules.append(".".join(["crossrank", folder, *parts]))
    assert "crossrank.pipeline.celery_app" in modules and "crossrank.worker.cli" in modules
    code = f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **BROKEN})
    assert result.returncode == 0, result.stderr


def test_every_setting_has_one_default_in_code_help_and_readme():
    rows = _readme_rows()
    for cls in SETTINGS:
        for f in dataclasses.fields(cls):
            assert variable(f) in rows, f"{variable(f)} is missing from the README's configuration tables"
            default, help_text = rows[variable(f)][-2:]
            assert default == str(f.default), (variable(f), default, f.default)
            if cls is not WorkerSettings:  # the worker's table shortens some of its longer help texts
                assert help_text == f.metadata["help"], variable(f)


def test_every_flag_takes_its_default_and_help_from_its_setting():
    seen = set()
    for path, command in _commands():
        # The worker reads the worker's settings, the bench its own; `up` and `demo` take the worker's model
        # and device and the pipeline's Redis; the others read the client's and the pipeline's.
        fields = {"serve": _fields(WorkerSettings), "bench": _fields(BenchSettings)}.get(path) or (
            _fields(ClientSettings, PipelineSettings, WorkerSettings) if path in STACK_COMMANDS
            else _fields(ClientSettings, PipelineSettings))
        for param in command.params:
            f = fields.get(getattr(param, "envvar", None) or "")
            if f is None:
                assert not (getattr(param, "envvar", None) or "").startswith("CROSSRANK_"), (path, param.name)
                continue
            seen.add((path, param.envvar))
            assert param.default == f.default, (path, param.name)
            if path not in STACK_COMMANDS:  # they give --device and --redis-url the stack's wider meaning
                assert param.help == f.metadata["help"], (path, param.name)
    assert {("jobs list", "CROSSRANK_REDIS_URL"), ("search", "CROSSRANK_TIMEOUT"),
            ("pipeline worker", "CROSSRANK_PIPELINE_METRICS_PORT"), ("pipeline worker", "CROSSRANK_JSON_LOGS"),
            ("serve", "CROSSRANK_PORT"), ("serve", "CROSSRANK_JSON_LOGS"), ("up", "CROSSRANK_MODEL"),
            ("demo", "CROSSRANK_REDIS_URL"), ("bench", "CROSSRANK_BENCH_TOKENIZER")} <= seen


def test_each_command_lists_only_the_options_it_uses():
    options = {path: {o for p in command.params for o in p.opts} for path, command in _commands()}
    for path in ("jobs list", "jobs cancel", "jobs status", "jobs rerank", "index"):
        assert "--redis-url" in options[path] and not {"--target", "--ca-cert", "--token"} & options[path], path
    assert "--redis-url" not in options["search"] and {"--target", "--chroma-url"} <= options["search"]
    assert {"--wait-for-worker", "--target"} <= options["info"] and "--redis-url" not in options["info"]


def test_every_option_is_described():
    for path, command in _commands():
        for param in command.params:
            if isinstance(param, click.Option) and "--version" not in param.opts:
                assert param.help, f"crossrank {path} {param.opts[0]} has no help"


@pytest.mark.parametrize("group", ["", "jobs", "pipeline"])
def test_no_command_summary_is_cut_at_80_columns(group):
    from click.testing import CliRunner

    from crossrank.client.cli import main

    result = CliRunner().invoke(main, [*group.split(), "--help"], terminal_width=80)
    assert result.exit_code == 0
    listing = result.output.split("Commands:")[1]
    assert listing.strip() and "..." not in listing
    assert max(map(len, result.output.splitlines())) <= 80


def test_a_bad_redis_url_is_one_line_with_the_password_masked():
    for args in (["jobs", "list"], ["pipeline", "worker"]):
        result = subprocess.run(crossrank_command(*args), capture_output=True, text=True, timeout=120,
                                env={**os.environ, "CROSSRANK_REDIS_URL": "http://user:s3cret@cache:6379/0"})
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [
            "Error: CROSSRANK_REDIS_URL must be a redis:// URL, not 'http://user:***@cache:6379/0'"], result.stderr


def test_a_setting_with_few_values_offers_them_as_choices():
    from crossrank.worker.settings import BACKENDS, DTYPES

    options = {p.name: p for path, command in _commands() if path == "serve" for p in command.params}
    assert options["dtype"].type.choices == DTYPES and options["backend"].type.choices == BACKENDS


def test_celery_dash_a_with_a_bad_variable_stops_rather_than_run_on_celerys_defaults():
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "crossrank.pipeline", "worker"], capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "CROSSRANK_REDIS_URL": "http://user:s3cret@cache:6379/0"})
    assert result.returncode != 0
    assert "CROSSRANK_REDIS_URL must be a redis:// URL, not 'http://user:***@cache:6379/0'" in result.stderr
    assert "s3cret" not in result.stderr
