"""The README documents every worker setting, and CI runs the README's test command."""

import dataclasses

from support.paths import ROOT

from crossrank.worker.settings import WorkerSettings

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_worker_setting_is_in_the_configuration_table():
    for f in dataclasses.fields(WorkerSettings):
        assert f"`CROSSRANK_{f.name.upper()}`" in README, f.name
        assert f"`--{f.name.replace('_', '-')}`" in README, f.name


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"\n{ci}\n" in README
    assert "pytest" in ci and "torch==2.13.0" in ci


def test_every_pipeline_setting_is_in_the_readme():
    from crossrank.pipeline.settings import PipelineSettings

    for f in dataclasses.fields(PipelineSettings):
        assert f"`CROSSRANK_{f.name.upper()}`" in README, f.name
