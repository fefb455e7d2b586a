"""docs/deployment.md says what the compose files and the CLI really do: its variables, files,
profiles, services, YAML overrides and `crossrank` command lines are checked against them."""

from __future__ import annotations

import re
import shlex

import click
import pytest
import yaml
from compose_support import (
    BASE,
    COMPOSE_FILES,
    ROOT,
    compose_model,
    environment,
    load_compose,
    merge,
    strings,
    variables,
)

GUIDE = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
CROSSRANK_NAME = re.compile(r"\bCROSSRANK_[A-Z0-9_]+\b")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE, flags=re.S)


def shell_lines() -> list[list[str]]:
    """Each command of the bash blocks as words: continuations joined, comments and env dropped."""
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]) or words[:1] == ["export"]:
                words = words[1:]
            if words:
                out.append(words)
    return out


def table_names() -> set[str]:
    """Names in the first column of the guide's tables."""
    return {n for row in re.findall(r"^\| (.+?) \|", GUIDE, flags=re.M) for n in re.findall(r"`([A-Z0-9_]+)`", row)}


def test_every_crossrank_name_in_the_guide_is_a_real_setting(known_settings):
    used = set(CROSSRANK_NAME.findall(GUIDE))
    assert used - {"CROSSRANK_"} <= known_settings, sorted(used - known_settings)


def test_the_guide_lists_every_setting_and_variable_the_compose_files_use():
    documented = table_names()
    for name in COMPOSE_FILES:
        model = load_compose(name)
        for service in model["services"].values():
            for key in environment(service):
                if key.startswith("CROSSRANK_"):
                    assert key in documented, f"{name}: {key} is missing from the guide's tables"
        for text in strings(model):
            for var, _ in variables(text):
                assert var in documented or f"`{var}`" in GUIDE, f"{name}: ${{{var}}} is not in the guide"


def test_the_guide_names_the_requirements():
    assert "Docker Compose 2.24" in GUIDE  # `!reset`
    assert "NVIDIA Container Toolkit" in GUIDE
    assert "crossrank up --workers 2 --pipeline-workers 2" in GUIDE


def test_files_named_in_the_guide_exist():
    for path in set(re.findall(r"(?<![\w/.-])((?:docker/)?[\w.-]+\.(?:yml|Dockerfile|py))\b", GUIDE)):
        if path in ("docker-compose.override.yml",):
            continue  # the user's own file
        assert (ROOT / path).exists() or (ROOT / "docker" / path).exists(), path


def test_compose_command_lines_use_real_files_profiles_and_services():
    base = compose_model(BASE)
    profiles = {p for s in base["services"].values() for p in s.get("profiles", [])}
    for words in shell_lines():
        if words[:2] != ["docker", "compose"]:
            continue
        for flag, value in zip(words, words[1:], strict=False):
            if flag == "-f":
                assert (ROOT / value).exists(), words
            elif flag == "--profile":
                assert value in profiles, words
            elif flag == "--scale":
                assert value.split("=")[0] in base["services"], words


def test_yaml_overrides_in_the_guide_apply_to_the_stack(known_settings):
    examples = blocks("yaml")
    assert examples
    base = compose_model(BASE)
    for text in examples:
        override = yaml.safe_load(text)
        assert set(override) == {"services"}, text
        for name, service in override["services"].items():
            assert name in base["services"], name
            assert set(CROSSRANK_NAME.findall(str(service))) <= known_settings
        merge(base, override)


def crossrank_invocations() -> list[list[str]]:
    """The arguments after `crossrank` (or the client image, whose entrypoint it is)."""
    found = []
    for words in shell_lines():
        for i, word in enumerate(words):
            if word in ("crossrank", "crossrank-client") or word.endswith("/crossrank"):
                if word == "crossrank-client" and (i == 0 or words[i - 1] == "-t"):
                    continue  # the tag given to `docker build`
                found.append(words[i + 1:])
                break
    return found


@pytest.mark.parametrize("args", crossrank_invocations(), ids=" ".join)
def test_crossrank_command_lines_use_real_subcommands_and_options(args):
    """Placeholders (JOB_ID, paths) stay unparsed; each subcommand and option must exist."""
    from crossrank.client.cli import main

    command, ctx = main, click.Context(main, info_name="crossrank")
    while isinstance(command, click.Group):
        name = args[0]
        sub = command.get_command(ctx, name)
        assert sub is not None and not (sub.help or "").startswith("(unavailable"), f"no `{name}` in {args}"
        command, ctx, args = sub, click.Context(sub, info_name=name, parent=ctx), args[1:]
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    for word in args:
        if word.startswith("-"):
            assert word.split("=")[0] in options, f"`{ctx.command_path}` has no option {word}"
