"""How jobs, results and hits look in a terminal: rich tables and a live progress bar.

Everything fits 80 columns: free text (collections, documents) is cut, by rich's cell widths so
that Chinese, which takes two cells a character, is cut right; ids, numbers, dates and elapsed
time never are. The words are the ones `crossrank rerank` uses: rank, score, document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from crossrank.pipeline import api
from crossrank.pipeline.jobs import JobStatus
from crossrank.pipeline.settings import PipelineSettings

console = Console()


def _when(timestamp: float | None, timespec: str = "seconds") -> str:
    return dt.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec=timespec) if timestamp else "-"


def _shorten(text: str, cells: int = 160) -> str:
    """One line of at most `cells` terminal cells (two lines of a wide column)."""
    text = " ".join(text.split())
    return text if cell_len(text) <= cells else set_cell_size(text, cells - 1).rstrip() + "…"


def _rate(job: JobStatus) -> str:
    return ", ".join(f"{v:,.1f} {k.replace('_per_s', '/s')}" for k, v in job.throughput.items())


def job_table(job: JobStatus) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [("job", job.id), ("kind", job.kind), ("state", job.state), ("collection", job.collection),
            ("progress", f"{job.progress}/{job.total}"),
            ("counts", ", ".join(f"{k} {v}" for k, v in sorted(job.counts.items()))),
            ("throughput", _rate(job)),
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


class _JobsTable:
    """Laid out when printed, at the console's width: every column as wide as its widest cell, and
    the collection, the only free text, gets what is left and is cut to it."""

    HEADERS = ("job", "kind", "state", "collection", "progress", "errors", "created")

    def __init__(self, jobs: Sequence[JobStatus]):
        self.rows = [(job.id, job.kind, job.state, job.collection, f"{job.progress}/{job.total}",
                      str(job.error_count), _when(job.created_at, "minutes")) for job in jobs]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = [max(cell_len(cell) for cell in [name, *(row[i] for row in self.rows)])
                  for i, name in enumerate(self.HEADERS)]
        fixed = sum(w for name, w in zip(self.HEADERS, widths, strict=True) if name != "collection")
        spare = options.max_width - fixed - (len(self.HEADERS) - 1)  # a space between columns
        table = Table.grid(padding=(0, 1))
        for name, width in zip(self.HEADERS, widths, strict=True):
            if name == "collection":
                width = max(8, min(width, spare))
            table.add_column(name, width=width, no_wrap=True, overflow="ellipsis",
                             justify="right" if name in ("progress", "errors") else "left")
        table.add_row(*(Text(name, style="bold") for name in self.HEADERS))
        collection = self.HEADERS.index("collection")
        for row in self.rows:  # cut here, by cells: rich's own cut leaves a gap before … after Chinese
            table.add_row(*row[:collection], _shorten(row[collection], table.columns[collection].width),
                          *row[collection + 1:])
        yield table


def jobs_table(jobs: Sequence[JobStatus]) -> _JobsTable:
    """One line per job; only the collection is cut to fit (ids are copied from here)."""
    return _JobsTable(jobs)


def ranked_table(title: str, rows: Sequence[tuple[int, int, float, str, str]]) -> Table:
    """Ranked results, one row each: rank, initial rank, score, document id, document."""
    table = Table(title=title, title_justify="left")
    for name in ("rank", "initial", "score"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("doc id", overflow="fold", max_width=24)
    table.add_column("document", overflow="fold", ratio=1)
    for rank, initial, score, doc_id, text in rows:
        table.add_row(str(rank), str(initial), f"{score:.4f}", doc_id, _shorten(text))
    return table


def progress_bar(console: Console = console) -> Progress:
    """Kind and state, a bar, items done/total, the rates, elapsed time; at 80 columns the rates
    are cut before the counts or the time."""
    return Progress(TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
                    BarColumn(bar_width=20), MofNCompleteColumn(table_column=Column(no_wrap=True)),
                    TextColumn("{task.fields[rate]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
                    TimeElapsedColumn(table_column=Column(no_wrap=True)), console=console, transient=False)


def show_progress(bar: Progress, task, job: JobStatus) -> None:
    bar.update(task, total=job.total, completed=job.progress, description=f"{job.kind} {job.state}", rate=_rate(job))


def follow(job_id: str, settings: PipelineSettings, timeout: float | None = None) -> JobStatus:
    """A live progress bar until the job finishes; returns the final status."""
    with progress_bar() as bar:
        task = bar.add_task(job_id, total=None, rate="")
        return api.wait(job_id, timeout=timeout, on_progress=lambda job: show_progress(bar, task, job),
                        settings=settings)
