"""`crossrank eval DATA` and `crossrank eval compare A.json B.json`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crossrank.client.cli_options import WORKER_SETTINGS, json_option
from crossrank.pipeline import api
from crossrank.pipeline.cli import _errors
from crossrank.pipeline.cli_options import CHROMA, REDIS
from crossrank.pipeline.evaluation import compare as comparison
from crossrank.pipeline.evaluation.beir import load_beir
from crossrank.pipeline.evaluation.first_stage import RRF_K, STAGES
from crossrank.pipeline.evaluation.report import table, write_out
from crossrank.pipeline.evaluation.run import EvalConfig, Evaluation
from crossrank.pipeline.settings import PipelineSettings

DEFAULT_PROFILE = "document"  # initial_k 100: the depth of the BEIR figures in data/SOURCES.md
stderr = Console(stderr=True)
# The worker and Chroma always; Redis for --via-jobs.
eval_options = PipelineSettings.options(*REDIS, *CHROMA, *WORKER_SETTINGS)


class _DataOrCommand(click.Group):
    """`crossrank eval DATA ...` runs `eval run DATA ...`; `crossrank eval compare ...` compares."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _stages(value: str) -> tuple[str, ...]:
    stages = tuple(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise click.BadParameter(f"{value!r}: a comma-separated list of {', '.join(STAGES)}")
    return stages


def _sweep(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    name, _, numbers = value.partition("=")
    try:
        depths = tuple(sorted({int(n) for n in numbers.split(",") if n.strip()}))
    except ValueError:
        depths = ()
    if name.strip() != "initial_k" or not depths or min(depths) < 1:
        raise click.BadParameter(f"{value!r}: write initial_k=20,50,100,200")
    return depths


class _Bar:
    """One progress bar per step, on stderr, gone when the run ends."""

    def __init__(self, progress: Progress):
        self.progress, self.tasks = progress, {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        self.progress.update(self.tasks[step], completed=done, total=total)


@click.group("eval", cls=_DataOrCommand)
def eval_() -> None:
    """Ranking quality over a BEIR folder: crossrank eval DATA [options], or crossrank eval compare A.json B.json."""


@eval_.command("run")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--first-stage", "stages", default=",".join(STAGES), show_default=True,
              help="Comma-separated first stages to compare, each alone and reranked.")
@click.option("--profile", type=click.Choice(list(api.PROFILES)), default=None,
              help=f"realtime 50/5, document 100/10, preview 20/3, deep 200/20 (initial_k/top_k) "
                   f"[default: {DEFAULT_PROFILE}].")
@click.option("--initial-k", type=click.IntRange(min=1), default=None, help="Candidates from the first stage.")
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="Kept for the record: every candidate is reranked, so MAP and recall compare like for like.")
@click.option("--sweep", default=None, help="Several depths at once, e.g. initial_k=20,50,100,200.")
@click.option("--rrf-k", type=click.IntRange(min=1), default=RRF_K, show_default=True,
              help="The k of reciprocal-rank fusion (hybrid).")
@click.option("--collection", default=None,
              help="Chroma collection to index into or reuse [default: eval-<folder>-<corpus and model hash>].")
@click.option("--via-jobs", is_flag=True, help="Index and rerank with the pipeline's jobs (needs a pipeline worker).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.json, per_query.csv and ndcg.png into this folder.")
@json_option
@eval_options
def run(data, stages, profile, initial_k, top_k, sweep, rrf_k, collection, via_jobs, out_dir, as_json,
        settings) -> None:
    """Index DATA (or reuse its collection), run the first stages, rerank with the worker, and report
    NDCG@10, MRR@10, Recall@initial_k and MAP per stage (ranx)."""
    chosen, depths = _stages(stages), _sweep(sweep)
    with _errors():
        base_initial, base_top = api.PROFILES[profile or DEFAULT_PROFILE]
        depths = depths or (initial_k or base_initial,)
        # The profile's top_k shrinks to a smaller explicit depth; an explicit --top-k does not.
        initial, top = api.depths(profile or DEFAULT_PROFILE, min(depths), top_k or min(base_top, min(depths)))
        config = EvalConfig(chosen, depths, top, profile, rrf_k, via_jobs, collection)
        loaded = load_beir(data)
        if loaded.left_out:
            stderr.print(f"{len(loaded.left_out)} left out (the report lists them all), the first: "
                         f"{loaded.left_out[0]}", soft_wrap=True, highlight=False)
        with Progress(TextColumn("{task.description:<14}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=stderr, transient=True) as progress:
            report = Evaluation(loaded, config, settings, _Bar(progress)).run()
        if out_dir is not None:
            write_out(report, out_dir)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    Console().print(table(report))
    if out_dir is not None:
        stderr.print(f"wrote report.json, per_query.csv and ndcg.png to {out_dir}", highlight=False)


@eval_.command("compare")
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def compare(a, b, as_json) -> None:
    """Per-metric difference B - A of two reports (report.json or --json output), with a paired t-test."""
    with _errors():
        entries = comparison.compare(comparison.load_report(a), comparison.load_report(b))
    if as_json:
        click.echo(json.dumps(entries, indent=2))
    else:
        Console().print(comparison.table(entries, str(a), str(b)))
