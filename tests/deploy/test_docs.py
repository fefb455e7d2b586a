"""docs/deployment.md says what the compose files and the CLI really do: its variables, files,
profiles, services, YAML overrides and `crossrank` command lines are checked against them, the
compose ones by Docker Compose itself."""

from __future__ import annotations

import json
import re
import subprocess

import click
import pytest
import yaml
from support.compose import (
    BASE,
    ROOT,
    VARIANTS,
    compose,
    compose_config,
    environment,
    file_args,
)
from support.dev_tools import dev_tool
from support.markdown import blocks, shell_lines

GUIDE = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
CROSSRANK_NAME = re.compile(r"\bCROSSRANK_[A-Z0-9_]+\b")


def table_names() -> set[str]:
    """Names in the first column of the guide's tables."""
    return {n for row in re.findall(r"^\| (.+?) \|", GUIDE, flags=re.M) for n in re.findall(r"`([A-Z0-9_]+)`", row)}


def test_every_crossrank_name_in_the_guide_is_a_real_setting(known_settings):
    used = set(CROSSRANK_NAME.findall(GUIDE))
    assert used - {"CROSSRANK_"} <= known_settings, sorted(used - known_settings)


def test_the_guide_lists_every_setting_and_variable_the_compose_files_use():
    documented = table_names()
    for files in VARIANTS.values():
        for service in compose_config(*files)["services"].values():
            for key in environment(service):
                if key.startswith("CROSSRANK_"):
                    assert key in documented, f"{files}: {key} is missing from the guide's tables"
        result = compose(*file_args(files), "config", "--variables", "--format", "json")
        for var in json.loads(result.stdout):
            assert var in documented or f"`{var}`" in GUIDE, f"{files}: ${{{var}}} is not in the guide"


def test_the_guide_names_the_requirements():
    assert "Docker Compose 2.24" in GUIDE  # `!reset`
    assert "NVIDIA Container Toolkit" in GUIDE
    assert "crossrank up --workers 2 --pipeline-workers 2" in GUIDE


def test_files_named_in_the_guide_exist():
    for path in set(re.findall(r"(?<![\w/.-])((?:docker/)?[\w.-]+\.(?:yml|Dockerfile|py))\b", GUIDE)):
        if path in ("docker-compose.override.yml",):
            continue  # the user's own file
        assert (ROOT / path).exists() or (ROOT / "docker" / path).exists(), path


def compose_command_lines() -> list[list[str]]:
    """Every `docker compose ...` line of the guide and the README, as words."""
    return [words for text in (GUIDE, README) for words in shell_lines(text) if words[:2] == ["docker", "compose"]]


def global_options(words: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(-f files, --profile names) given before the subcommand (after it, `logs -f` means follow)."""
    files, profiles, rest = [], [], words[2:]
    while rest and rest[0].startswith("-"):
        flag, value, rest = rest[0], rest[1], rest[2:]
        {"-f": files, "--profile": profiles}[flag].append(value)
    return tuple(files) or (BASE,), tuple(profiles)


def services_named(words: list[str]) -> set[str]:
    """The services a compose command line names: --scale NAME=N, `logs [-f] NAME`, `run ... NAME`."""
    names = {value.split("=")[0] for flag, value in zip(words, words[1:], strict=False) if flag == "--scale"}
    command = next((w for w in words[2:] if w in ("logs", "run", "up", "ps", "stop")), None)
    if command == "logs":
        names |= {w for w in words[words.index("logs") + 1 :] if not w.startswith("-")}
    elif command == "run":
        rest = words[words.index("run") + 1 :]
        while rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in ("-v", "--volume", "-e", "--env") else rest[1:]
        names.add(rest[0])
    return names


@pytest.mark.parametrize("words", compose_command_lines(), ids=" ".join)
def test_compose_command_lines_resolve_with_compose(words):
    """Each command's files and profiles, resolved by Compose; the services it names exist."""
    files, profiles = global_options(words)
    model = compose_config(*files, profiles=profiles)
    assert services_named(words) <= set(model["services"]), words


def test_the_docs_mention_every_way_to_start_the_stack():
    options = [global_options(words) for words in compose_command_lines()]
    assert {files for files, _ in options} == set(VARIANTS.values())
    assert ("monitoring",) in {profiles for _, profiles in options}


def test_compose_file_in_dot_env_is_the_same_as_the_f_flags(tmp_path):
    """The guide's `COMPOSE_FILE=docker-compose.yml:docker-compose.cpu.yml` in an env file."""
    (setting,) = re.findall(r"`(COMPOSE_FILE=[^`]+)`", GUIDE)
    env_file = tmp_path / ".env"
    env_file.write_text(setting + "\n")
    result = compose("--env-file", str(env_file), "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    files = tuple(setting.split("=", 1)[1].split(":"))
    assert json.loads(result.stdout) == compose_config(*files, profiles=())


def test_the_env_file_example_chooses_the_models(tmp_path):
    (example,) = [b for b in blocks("bash", GUIDE) if b.startswith("# .env\n")]
    env_file = tmp_path / ".env"
    env_file.write_text(example)
    values = dict(line.split("=", 1) for line in example.splitlines() if "=" in line)
    result = compose("--env-file", str(env_file), "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    worker = environment(json.loads(result.stdout)["services"]["worker"])
    assert (worker["CROSSRANK_MODEL"], worker["CROSSRANK_EMBED_MODEL"]) == (
        values["WORKER_MODEL"],
        values["WORKER_EMBED_MODEL"],
    )


@pytest.mark.parametrize("example", blocks("yaml", GUIDE), ids=lambda text: text.split("\n")[1].strip())
def test_yaml_overrides_in_the_guide_apply_to_the_stack(example, known_settings, tmp_path):
    """Each override in the guide, given to Compose after docker-compose.yml, changes what it says."""
    override = yaml.safe_load(example)
    assert set(override) == {"services"}, example
    path = tmp_path / "docker-compose.override.yml"
    path.write_text(example)
    result = compose("-f", BASE, "-f", str(path), "--profile", "monitoring", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    merged = json.loads(result.stdout)["services"]
    for name, service in override["services"].items():
        assert set(CROSSRANK_NAME.findall(str(service))) <= known_settings
        for key, value in (service.get("environment") or {}).items():
            assert environment(merged[name])[key] == value, (name, key)
        if "command" in service:
            assert merged[name]["command"] == service["command"], name
        targets = {v["target"] for v in merged[name].get("volumes", [])}
        assert {v.split(":")[1] for v in service.get("volumes", [])} <= targets, name


def crossrank_invocations() -> list[list[str]]:
    """The arguments after `crossrank` (or the client image, whose entrypoint it is)."""
    found = []
    for words in shell_lines(GUIDE):
        for i, word in enumerate(words):
            if word in ("crossrank", "crossrank-client") or word.endswith("/crossrank"):
                if word == "crossrank-client" and (i == 0 or words[i - 1] == "-t"):
                    continue  # the tag given to `docker build`
                found.append(words[i + 1 :])
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


def test_the_guide_s_checks_run_as_written():
    """`.venv/bin/docker-compose ...` and `.venv/bin/hadolint ...`, with the dev extra's tools."""
    checks = [words for words in shell_lines(GUIDE) if words[0] in (".venv/bin/docker-compose", ".venv/bin/hadolint")]
    assert {words[0] for words in checks} == {".venv/bin/docker-compose", ".venv/bin/hadolint"}
    for words in checks:
        if words[0].endswith("docker-compose"):
            result = compose(*words[1:])
        else:
            result = subprocess.run(
                [dev_tool("hadolint"), *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
            )
        assert result.returncode == 0, f"{' '.join(words)}\n{result.stdout}{result.stderr}"
