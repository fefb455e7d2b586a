"""How jobs, results and hits look in a terminal: rich tables and a live progress bar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crossrank.pipeline import api
from crossrank.pipeline.jobs import JobStatus
from crossrank.pipeline.settings import PipelineSettings

console = Console()


def _when(timestamp: float | None) -> str:
    return dt.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds") if timestamp else "-"


def _shorten(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def job_table(job: JobStatus) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [("job", job.id), ("kind", job.kind), ("state", job.state), ("collection", job.collection),
            ("progress", f"{job.progress}/{job.total}"),
            ("counts", ", ".join(f"{k} {v}" for k, v in sorted(job.counts.items()))),
            ("throughput", ", ".join(f"{v:,.1f} {k.replace('_per_s', '/s')}" for k, v in job.throughput.items())),
            ("created", _when(job.created_at)), ("started", _when(job.started_at)),
            ("finished", _when(job.finished_at)), ("elapsed", f"{job.elapsed:.1f}s")]
    if job.kind == "rerank":
        rows.insert(4, ("depth", f"initial_k {job.params.get('initial_k')}, top_k {job.params.get('top_k')} "
                                 f"-> {job.params.get('results_collection')}"))
    if job.stalled:
        rows.insert(3, ("stalled", f"[yellow]{job.stalled}[/yellow]"))
    rows.append(("errors", str(job.error_count)))
    for label, value in rows:
        table.add_row(label, value)
    for error in job.errors[:10]:
        where = ", ".join(f"{k} {error[k]}" for k in ("line", "chunk", "query_id") if k in error)
        table.add_row("", f"[red]{where}: {error['message']}[/red]")
    if job.error_count > 10:
        table.add_row("", f"... and {job.error_count - 10} more (--json shows up to 1000)")
    return table


def jobs_table(jobs: Sequence[JobStatus]) -> Table:
    table = Table("job", "kind", "state", "collection", "progress", "errors", "created")
    table.columns[0].no_wrap = True  # ids are copied from here
    for job in jobs:
        table.add_row(job.id, job.kind, job.state, job.collection, f"{job.done}/{job.total}", str(job.error_count),
                      _when(job.created_at))
    return table


def ranked_table(title: str, rows: Sequence[tuple[int, int, float, str, str]]) -> Table:
    """The original write-up's output: rank, initial rank, score, text."""
    table = Table("rank", "initial", "score", "doc", "text", title=title, title_justify="left")
    for rank, initial, score, doc_id, text in rows:
        table.add_row(str(rank), str(initial), f"{score:.4f}", doc_id, _shorten(text))
    return table


def follow(job_id: str, settings: PipelineSettings, timeout: float | None = None) -> JobStatus:
    """A live progress bar until the job finishes; returns the final status."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task(job_id, total=None, rate="")

        def update(job: JobStatus) -> None:
            rate = ", ".join(f"{v:,.1f} {k.replace('_per_s', '/s')}" for k, v in job.throughput.items())
            bar.update(task, total=job.total, completed=job.progress, description=f"{job.kind} {job.id} {job.state}",
                       rate=rate)

        return api.wait(job_id, timeout=timeout, on_progress=update, settings=settings)
