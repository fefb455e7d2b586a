"""The `crossrank` command. Client subcommands live here; the others are found through the
`crossrank.commands` entry points and imported only when they run, so the light SDK works
without the worker or pipeline extras."""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from crossrank.client.cli_options import Group, json_option, wait_for_worker_option, worker_options
from crossrank.client.exceptions import CrossrankError
from crossrank.client.settings import ClientSettings

console = Console()


class _LazyGroup(Group):
    """Adds the subcommands registered by the installed packages, on first use."""

    def _plugins(self) -> dict:
        return {ep.name: ep for ep in entry_points(group="crossrank.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        ep = self._plugins().get(name)
        if ep is None:
            return None
        try:
            return ep.load()
        except ImportError as exc:
            return _missing_extra(name, exc)


def _missing_extra(name: str, exc: ImportError) -> click.Command:
    """A stand-in that says which extra to install, so `--help` still lists the command."""
    extra = {"serve": "worker", "bench": "worker,bench"}.get(name, "pipeline")
    message = f"`crossrank {name}` needs more packages ({exc.name} is missing): pip install 'crossrank[{extra}]'"

    @click.command(name, help=f"(unavailable: install crossrank[{extra}])",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def missing() -> None:
        raise click.ClickException(message)

    return missing


@click.group(cls=_LazyGroup)
@click.version_option(package_name="crossrank")
def main() -> None:
    """crossrank: cross-encoder reranking over gRPC, with bulk jobs into Chroma."""


def read_documents(path: Path) -> list[str]:
    """.txt: one document per line; .jsonl: a string, or an object with `text` (or `document`).

    Results' `index` counts lines, so a blank line inside the file is refused rather than skipped
    (which would shift every index after it); blank lines at the end shift nothing."""
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if blank := next((n for n, line in enumerate(lines, 1) if not line.strip()), None):
        raise click.BadParameter(f"{path}:{blank} is blank: remove it, so that each result's index is its "
                                 "line number - 1", param_hint="--docs-file")
    if path.suffix != ".jsonl":
        return lines
    docs = []
    for n, line in enumerate(lines, 1):
        item = json.loads(line)
        if isinstance(item, str):
            docs.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text", item.get("document")), str):
            docs.append(item.get("text", item.get("document")))
        else:
            raise click.BadParameter(f"{path}:{n}: expected a string or an object with 'text'")
    return docs


def _fail(exc: CrossrankError) -> None:
    raise click.ClickException(f"{type(exc).__name__}: {exc.details}")


def _connected_client(settings: ClientSettings, wait_for_worker: bool):
    """A client whose worker answers: within 2 s, or, with --wait-for-worker, within the call's deadline."""
    from crossrank.client.sync import CrossrankClient

    client = CrossrankClient(**settings.client_kwargs())
    if not wait_for_worker:
        try:
            client.connect(timeout=2.0)
        except CrossrankError:
            client.close()
            raise
    return client


@main.command()
@click.argument("query")
@click.option("-d", "--document", "documents", multiple=True, help="A candidate document (repeatable).")
@click.option("--docs-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=".txt with one document per line, or .jsonl.")
@click.option("--top-k", type=int, default=0, help="Show the best K only (0 = all).")
@click.option("--raw-scores", is_flag=True, help="The model's logits instead of [0, 1] scores.")
@click.option("--long-document", type=click.Choice(["truncate", "window", "error"]), default="truncate",
              show_default=True, help="A document too long for the model: cut it, score its best window, or refuse.")
@click.option("--instruction", default=None,
              help="The task in words, for models that take one (LLM rerankers); default: the model's own.")
@click.option("--priority", type=int, default=0, show_default=True,
              help="Lower is served sooner; 0 is interactive, the pipeline's jobs send 10.")
@json_option
@wait_for_worker_option
@worker_options
def rerank(query, documents, docs_file, top_k, raw_scores, long_document, instruction, priority, as_json,
           wait_for_worker, settings) -> None:
    """Rank documents against QUERY and print them, best first."""
    docs = list(documents) + (read_documents(docs_file) if docs_file else [])
    if not docs:
        raise click.UsageError("give documents with -d/--document or --docs-file")
    try:
        with _connected_client(settings, wait_for_worker) as client:
            response = client.rerank(query, docs, top_k=top_k, return_documents=True, raw_scores=raw_scores,
                                     long_document=long_document, instruction=instruction, priority=priority)
    except CrossrankError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps({
            "query": query, "model": response.model,
            "results": [{"rank": rank, "index": r.index, "score": r.score, "document": r.document}
                        for rank, r in enumerate(response.results, 1)],
            "usage": {"pairs": response.usage.pairs, "tokens": response.usage.tokens,
                      "queue_ms": response.usage.queue_ms, "inference_ms": response.usage.inference_ms},
        }, ensure_ascii=False))
        return
    table = Table(title=f"Query: {query}", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("index", justify="right")
    table.add_column("document", overflow="fold")
    for rank, r in enumerate(response.results, 1):
        table.add_row(str(rank), f"{r.score:.4f}", str(r.index), r.document or "")
    console.print(table)
    u = response.usage
    console.print(f"[dim]{response.model}: {u.pairs} pairs, {u.tokens} tokens, "
                  f"queue {u.queue_ms:.1f} ms, inference {u.inference_ms:.1f} ms[/dim]")


@main.command()
@json_option
@click.option("--wait", is_flag=True,
              help="Wait until a worker that is still loading is ready, instead of failing (--wait-for-worker "
              "waits for that too).")
@wait_for_worker_option
@worker_options
def info(as_json, wait, wait_for_worker, settings) -> None:
    """Show what a worker serves and its limits; fails while it is still loading, unless --wait."""
    import dataclasses
    import time

    try:
        with _connected_client(settings, wait_for_worker) as client:
            worker = client.info()
            while (wait or wait_for_worker) and worker.state == "loading":
                time.sleep(1.0)
                worker = client.info()
    except CrossrankError as exc:
        _fail(exc)
    fields = dataclasses.asdict(worker)
    if as_json:
        click.echo(json.dumps(fields, ensure_ascii=False))
    else:
        width = max(map(len, fields))
        for key, value in fields.items():
            click.echo(f"{key.ljust(width)}  {value}")
    if worker.state == "loading":
        raise click.ClickException(f"the worker at {settings.worker_target} is still loading {worker.model} on "
                                   f"{worker.device} ({worker.loading_seconds:.0f} s so far); run again with "
                                   "--wait to wait until it is ready")
    if worker.state == "failed":
        raise click.ClickException(f"the worker at {settings.worker_target} failed to load {worker.model}: "
                                   f"{worker.load_error}")


if __name__ == "__main__":
    sys.exit(main())
