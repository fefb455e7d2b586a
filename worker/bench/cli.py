"""`crossrank bench`: the worker against CrossEncoder.predict on the same model and pairs, in one run."""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path

import click

from crossrank.worker.bench.models import ARCHITECTURES
from crossrank.worker.bench.settings import BenchSettings
from crossrank.worker.cpu_threads import let_idle_threads_sleep
from crossrank.worker.settings import BACKENDS, TORCH_GRAPHS

QUICK = {"queries": 6, "levels": "1,4", "concurrency": 4, "accuracy_queries": 4}


def _default_data() -> Path | None:
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        folder = base.parent / "shared" / "data" / "agentset-msmarco"
        if folder.is_dir():
            return folder
    return None


def _echo(text: str) -> None:
    """Each line of `text` wrapped to 80 columns, its continuation indented under it."""
    for line in text.split("\n"):
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        click.echo(textwrap.fill(line, 80, subsequent_indent=indent, break_on_hyphens=False))


def _percent(value: float) -> str:
    return f"{value:.0%}" if value >= 10 else f"{value:.1%}"  # the tokenizer's row is thousands of %: keep 7 wide


def _echo_summary(result: dict) -> None:
    click.echo(f"{'run':<17}{'pairs/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
               f"{'x (a)':>7}{'MFU':>7}{'MFU/bf16':>9}{'cpu':>6}")
    runs = result["runs"]
    rows = [runs[k] for k in ("a_predict", "p_query", "p_sorted", "p_sorted_fp32", "st_openvino", "st_onnx",
                              "tokenizer_1_core", "m_model_only", "m_model_1_thread") if k in runs]
    for r in [*rows, *result["sweep"], runs["d_stream"], runs["e_stream_process"]]:
        bf16 = _percent(r["mfu_vs_bf16_peak"]) if r["mfu_vs_bf16_peak"] is not None else "-"
        click.echo(f"{r['name']:<17}{r['pairs_per_s']:>9.1f}{r['p50_ms']:>8.0f}{r['p95_ms']:>8.0f}"
                   f"{r['p99_ms']:>8.0f}{r['ratio_vs_a']:>7.2f}{_percent(r['mfu']):>7}{bf16:>9}{r['cpu_use']:>6.2f}")
    padded = [(r["name"], r["padding"]) for r in (runs["m_model_only"], *result["sweep"], runs["d_stream"])
              if r.get("padding") is not None]
    if padded:  # real tokens over padded ones: what the batches' shapes cost a compute-bound device
        _echo("padding efficiency: " + ", ".join(f"{name} {value:.2f}" for name, value in padded))
    host = result.get("host")
    if host:  # the worker's own process: its CPU per pair against the tokenizer's and the model's
        h = host
        click.echo(f"host path, {h['cores']} cores, {h['frontends']} frontends:\n"
                   f"  T1 {h['t1_pairs_per_s']:.0f} and M1 {h['m1_pairs_per_s']:.0f} pairs/s: bound "
                   f"{h['bound_pairs_per_s']:.0f} pairs/s, ideal {h['ideal_cpu_ms_per_pair']:.3f} ms CPU/pair\n"
                   f"  worker {h['worker_pairs_per_s']:.0f} pairs/s ({h['vs_bound']:.2f}x bound), "
                   f"{h['worker_cpu_ms_per_pair']:.3f} ms CPU/pair")
    for name, reason in result["peers_unavailable"].items():
        _echo(f"peer {name}: not run ({reason})")
    cpu = result["cpu"]
    _echo(f"CPU class {cpu['class']} ({', '.join(cpu['flags']) or 'none of the flags read'}):\n"
               f"  auto picks {cpu['auto']['backend']} {cpu['auto']['dtype']}: {cpu['auto']['reason']}\n"
               f"  served {cpu['serving']['backend']} {cpu['serving']['dtype']}: {cpu['serving']['reason']}")
    for name, t in result["targets"].items():
        verdict = t.get("note", "not measured here") if t["met"] is None else "met" if t["met"] else "NOT met"
        _echo(f"target {name}: {t['value']} (target {t['target']}) {verdict}")
    for mode, acc in result.get("accuracy", {}).get("modes", {}).items():
        if acc["available"]:
            click.echo(f"accuracy {mode}: spearman {acc['spearman']:.5f}, max |score diff| "
                       f"{acc['max_abs_score_diff']:.2e}")
        else:
            click.echo(f"accuracy {mode}: unavailable ({acc['reason']})")


@click.command("bench")
@click.option("--model", default="minilm-l6", show_default=True,
              help=f"Architecture name with random weights ({', '.join(ARCHITECTURES)}) or a model path/id.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--dtype", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
              help="Worker precision, as `crossrank serve --dtype`; (p) runs at it too, (a) always at fp32.")
@click.option("--backend", default="torch", show_default=True, type=click.Choice(BACKENDS),
              help="The worker's model runtime, as `crossrank serve --backend`.")
@click.option("--torch-graph", default="auto", show_default=True, type=click.Choice(TORCH_GRAPHS),
              help="How --backend torch runs the model, as `crossrank serve --torch-graph`.")
@click.option("--queries", type=int, default=32, show_default=True, help="Queries, each with 20-100 documents.")
@click.option("--fixed-length", type=int, default=0, show_default=True,
              help="Every document this many tokens; 0 = log-normal lengths in [20, 500].")
@click.option("--concurrency", type=int, default=32, show_default=True, help="Clients in run (c); in-flight in (d).")
@click.option("--levels", default="1,4,16,32", show_default=True, help="Concurrency sweep for the plot.")
@click.option("--max-batch-tokens", type=int, default=4096, show_default=True, help="The worker's token budget.")
@click.option("--max-batch-pairs", type=int, default=32, show_default=True, help="The worker's pairs per batch.")
@click.option("--threads", type=int, default=0, help="torch threads; 0 = all cores.")
@click.option("--frontends", type=int, default=0, show_default=True,
              help="The worker-process row's `serve --frontends N` (0: one process).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random workload: same seed, same pairs.")
@click.option("--accuracy", is_flag=True, help="Also score a fixed set in every backend and precision against fp32.")
@click.option("--accuracy-model", default=None,
              help="Trained model for --accuracy (default: --model when it is a path).")
@click.option("--accuracy-data", type=click.Path(path_type=Path), default=None,
              help="BEIR folder for --accuracy pairs (default: ../shared/data/agentset-msmarco when present).")
@click.option("--quick", is_flag=True, help="A short run: 6 queries, concurrency 1 and 4. For tests.")
@click.option("--mixed", is_flag=True,
              help="Run only the mixed workload: live Rerank calls beside a bulk flood (worker/bench/mixed.py).")
@click.option("--mixed-calls", type=int, default=300, show_default=True,
              help="Interactive Rerank calls in each run of --mixed (--quick: 24).")
@click.option("--host-path", is_flag=True,
              help="Run only the host path in rounds: T1, M1 and the worker's stream, each round against its "
                   "own bound (worker/bench/host_rounds.py).")
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True, help="Rounds of --host-path.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results"), show_default=True,
              help="Folder for report.json and report.png.")
@BenchSettings.options()  # --tokenizer and --cache; the command gets the validated `settings`
def bench(model, device, dtype, backend, torch_graph, queries, fixed_length, concurrency, levels, max_batch_tokens,
          max_batch_pairs, threads, frontends, seed, accuracy, accuracy_model, accuracy_data, quick, mixed,
          mixed_calls, host_path, rounds, out, settings: BenchSettings) -> None:
    """Measure the worker against CrossEncoder.predict, the peer and its own model on the same pairs.

    --model tiny (one layer, hidden 32) measures the host path alone: compare the worker with
    the one-core tokenizer rate of the same run.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    let_idle_threads_sleep()  # as `crossrank serve` does, so in-process rows run the same way
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    from crossrank.worker.bench import report, suite
    from crossrank.worker.bench.models import resolve_model

    torch.set_num_threads(threads or os.cpu_count() or 1)
    if quick:
        queries, levels, concurrency = QUICK["queries"], QUICK["levels"], QUICK["concurrency"]
    path, label = resolve_model(model, settings)
    cfg = suite.BenchConfig(path, label, device, dtype, backend, queries, fixed_length, concurrency,
                            [int(x) for x in levels.split(",") if x.strip()], max_batch_tokens, max_batch_pairs, seed,
                            frontends, torch_graph)
    if mixed:
        from crossrank.worker.bench import mixed as mixed_run

        mixed_cfg = mixed_run.MixedConfig(calls=24 if quick else mixed_calls, capacity_seconds=2.0 if quick else 10.0,
                                          concurrency=concurrency, seed=seed)
        result = mixed_run.run(cfg, mixed_cfg)
        report.write_json(result, out / "report.json")
        click.echo("\n".join(mixed_run.summary_lines(result)))
        click.echo(f"wrote {out / 'report.json'}")
        return
    if host_path:
        from crossrank.worker.bench import host_rounds

        try:
            result = host_rounds.run(cfg, rounds)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        report.write_json(result, out / "report.json")
        click.echo("\n".join(host_rounds.summary_lines(result)))
        click.echo(f"wrote {out / 'report.json'}")
        return
    result = suite.run(cfg)
    if accuracy:
        from crossrank.worker.bench import accuracy as acc

        trained = accuracy_model or (None if model in ARCHITECTURES else path)
        if trained is None:
            raise click.UsageError("--accuracy needs a trained model: pass --accuracy-model PATH")
        n = QUICK["accuracy_queries"] if quick else 50
        pairs, source = acc.default_pairs(accuracy_data or _default_data(), n, 20)
        result["accuracy"] = {"model": trained, "pairs": len(pairs), "source": source,
                              "modes": acc.compare(trained, pairs)}
        from crossrank.worker.engine.device import native_bf16

        # The CPU defaults: bf16 where the CPU runs it natively, else fp32; the ONNX backends are opt-in.
        default_modes = ("fp32", "bf16") if native_bf16() else ("fp32",)
        result["targets"]["spearman_default_modes"] = {
            "value": min(result["accuracy"]["modes"][m]["spearman"] for m in default_modes),
            "target": 0.99, "modes": list(default_modes),
            "met": all(result["accuracy"]["modes"][m]["spearman"] >= 0.99 for m in default_modes)}
    report.write_json(result, out / "report.json")
    report.write_plot(result, out / "report.png")
    _echo_summary(result)
    click.echo(f"wrote {out / 'report.json'} and {out / 'report.png'}")
