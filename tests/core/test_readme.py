"""The README documents every worker setting, its folder table matches the tree, and CI runs its test
command."""

import dataclasses
import subprocess

import pytest
from support.paths import ROOT

from crossrank.worker.settings import WorkerSettings

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_worker_setting_is_in_the_configuration_table():
    for f in dataclasses.fields(WorkerSettings):
        assert f"`CROSSRANK_{f.name.upper()}`" in README, f.name
        assert f"`--{f.name.replace('_', '-')}`" in README, f.name


def test_folder_table_matches_the_tree():
    """One row per top-level folder in git, each import name the one pyproject.toml maps to it."""
    tomllib = pytest.importorskip("tomllib")
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tree's folders are the ones git tracks")
    rows = {}
    for line in README.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and cells[0].endswith("/"):
            rows[cells[0].rstrip("/")] = cells[1]
    folders = {path.split("/")[0] for path in listed.stdout.splitlines() if "/" in path}
    folders = {f for f in folders if not f.startswith(".")}
    assert set(rows) == folders
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert {name: folder for folder, name in rows.items() if name != "-"} == package_dir


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"\n{ci}\n" in README
    assert "pytest" in ci and "torch==2.13.0" in ci


def test_every_pipeline_setting_is_in_the_readme():
    from crossrank.pipeline.settings import PipelineSettings

    for f in dataclasses.fields(PipelineSettings):
        assert f"`CROSSRANK_{f.name.upper()}`" in README, f.name
