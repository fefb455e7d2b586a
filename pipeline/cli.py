"""`crossrank index`, `crossrank jobs ...` and `crossrank search`.

Submitting needs only Redis; `jobs results` and `search` also read Chroma, and `search` calls a
worker. Every command takes `--json` for scripts.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import click

from crossrank.client.cli_options import Group, json_option
from crossrank.client.exceptions import CrossrankError
from crossrank.client.settings import override_option
from crossrank.pipeline import api
from crossrank.pipeline.cli_options import redis_options, results_options, search_options
from crossrank.pipeline.documents import FORMATS
from crossrank.pipeline.jobs import JobNotFound, JobStatus
from crossrank.pipeline.render import console, follow, job_table, jobs_table, ranked_table
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import CollectionNotFound


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Expected failures become one clear line and exit code 1, not a traceback."""
    import redis

    try:
        yield
    except (JobNotFound, CollectionNotFound, ValueError, CrossrankError, OSError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from exc
    except redis.ConnectionError as exc:
        raise click.ClickException(f"cannot reach Redis ({exc}); set CROSSRANK_REDIS_URL or --redis-url") from exc


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _show(job: JobStatus, as_json: bool) -> None:
    if as_json:
        _print_json(job.as_dict())
    else:
        console.print(job_table(job))


def _submitted(job_id: str, settings: PipelineSettings, wait: bool, as_json: bool) -> None:
    """Print the id at once; with --wait, follow the job and exit 1 unless it ends done."""
    if not wait:
        _print_json({"job_id": job_id}) if as_json else click.echo(job_id)
        return
    if as_json:
        job = api.wait(job_id, settings=settings)
    else:
        click.echo(f"job {job_id}", err=True)
        job = follow(job_id, settings)
    _show(job, as_json)
    if job.state != "done":
        sys.exit(1)


@click.command("index")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--collection", required=True, help="Chroma collection to write passages into.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Input format [default: from the extension; .jsonl, .csv, else one document per line].")
@override_option(PipelineSettings, "passage_chars", type=click.IntRange(min=1))
@override_option(PipelineSettings, "passage_overlap", type=click.IntRange(min=0))
@click.option("--wait", is_flag=True, help="Show a progress bar until the job ends.")
@json_option
@redis_options
def index(file, collection, fmt, passage_chars, passage_overlap, wait, as_json, settings) -> None:
    """Enqueue an index job for FILE (JSONL with id/text/metadata, CSV, or text) and print its id."""
    with _errors():
        job_id = api.submit_index(file, collection, fmt=fmt, passage_chars=passage_chars,
                                  passage_overlap=passage_overlap, settings=settings)
        _submitted(job_id, settings, wait, as_json)


@click.group("jobs", cls=Group)
def jobs() -> None:
    """Rerank jobs, and the status, list, cancellation and results of any job."""


@jobs.command("rerank")
@click.option("--collection", required=True, help="Indexed collection to search.")
@click.option("--queries", "queries_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL (id or _id, text) or text, one query per line.")
@click.option("--profile", type=click.Choice(list(api.PROFILES)), default=None,
              help="realtime 50/5, document 100/10, preview 20/3, deep 200/20 (initial_k/top_k) [default: realtime].")
@click.option("--initial-k", type=click.IntRange(min=1), default=None, help="Candidates from the vector search.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Reranked results kept per query.")
@click.option("--results-collection", default=None, help="Where results go [default: <collection>-results].")
@click.option("--wait", is_flag=True, help="Show a progress bar until the job ends.")
@json_option
@redis_options
def rerank(collection, queries_file, profile, initial_k, top_k, results_collection, wait, as_json, settings) -> None:
    """Enqueue a rerank job over a collection and print its id."""
    with _errors():
        job_id = api.submit_rerank(queries_file, collection, profile=profile, initial_k=initial_k, top_k=top_k,
                                   results_collection=results_collection, settings=settings)
        _submitted(job_id, settings, wait, as_json)


@jobs.command("status")
@click.argument("job_id")
@click.option("--watch", is_flag=True, help="A live progress bar until the job ends.")
@json_option
@redis_options
def status(job_id, watch, as_json, settings) -> None:
    """State, progress, counts, errors, timings and throughput of a job."""
    with _errors():
        job = follow(job_id, settings) if watch and not as_json else api.status(job_id, settings=settings)
        _show(job, as_json)


@jobs.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many jobs, newest first.")
@json_option
@redis_options
def list_(limit, as_json, settings) -> None:
    """The most recent jobs."""
    with _errors():
        found = api.list_jobs(limit, settings=settings)
        if as_json:
            _print_json([j.as_dict() for j in found])
        else:
            console.print(jobs_table(found))


@jobs.command("cancel")
@click.argument("job_id")
@json_option
@redis_options
def cancel(job_id, as_json, settings) -> None:
    """Cancel a queued or running job; its chunks not yet started are skipped."""
    with _errors():
        _show(api.cancel(job_id, settings=settings), as_json)


@jobs.command("resume")
@click.argument("job_id")
@json_option
@redis_options
def resume(job_id, as_json, settings) -> None:
    """Send again the chunks of a stalled job that are not yet counted."""
    with _errors():
        chunks = api.resume(job_id, settings=settings)
        if as_json:
            _print_json({"job_id": job_id, "chunks": chunks})
        else:
            click.echo(f"job {job_id}: sent {len(chunks)} chunks again" +
                       (f" ({', '.join(map(str, chunks))})" if chunks else ""))


@jobs.command("results")
@click.argument("job_id")
@click.option("--query", "query_id", default=None, help="Only this query id.")
@json_option
@results_options
def results(job_id, query_id, as_json, settings) -> None:
    """A rerank job's ranked passages, per query: rank, initial, score, doc id, document."""
    with _errors():
        records = api.results(job_id, query_id=query_id, settings=settings)
        if as_json:
            _print_json([asdict(r) for r in records])
            return
        if not records:
            click.echo("no results" + (f" for query {query_id}" if query_id else ""), err=True)
        for qid, group in api.summarize(records).items():
            console.print(ranked_table(f"{qid}: {group[0].query}",
                                       [(r.rank, r.initial_rank, r.score, r.doc_id, r.text) for r in group]))


@click.command("search")
@click.argument("query")
@click.option("--collection", required=True, help="Indexed collection to search.")
@click.option("--initial-k", type=click.IntRange(min=1), default=50, show_default=True,
              help="Candidates from the vector search, all scored by the cross-encoder.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Results shown.")
@json_option
@search_options
def search(query, collection, initial_k, top_k, as_json, settings) -> None:
    """Two-stage search now, without Celery: vector search, then the cross-encoder."""
    with _errors():
        started = time.perf_counter()
        hits = api.search(query, collection, initial_k=initial_k, top_k=top_k, settings=settings)
        took = time.perf_counter() - started
        if as_json:
            _print_json([{k: v for k, v in asdict(h).items() if k != "embedding"} for h in hits])
            return
        console.print(ranked_table(f"{query}  ({took * 1000:.0f} ms)",
                                   [(h.rank, h.initial_rank, h.score, h.doc_id, h.text) for h in hits]))
