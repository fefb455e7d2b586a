"""`crossrank bench --host-path`: the host path against the machine's own bound, in rounds (issue 19).

Each round measures, one after another over the same pairs:
- T1, the model's fast tokenizer on one core;
- M1, the worker's model on one thread, fed pre-tokenized, length-sorted batches;
- the worker, `crossrank serve` as its own process, fed by one RerankStream; its CPU is its
  process tree's, also split by what its threads do (`thread_cpu.py`).

A round's ratios use that round's own T1 and M1: cores / (1/T1 + 1/M1) is the most the machine
can score, and 1/T1 + 1/M1 the least CPU a pair can cost. The report gives every round and the
medians. On a shared CPU one measurement moves 20-70% from one minute to the next (T1 went from
1,833 to 3,147 pairs/s between two full benches), so one full `crossrank bench` cannot tell a
change from noise; rounds of a few seconds, each against its own bound, can.
"""

from __future__ import annotations

import datetime
import logging
import os
import statistics
import textwrap
from pathlib import Path
from typing import Any

from crossrank.worker.bench import report, runners, thread_cpu
from crossrank.worker.bench.process import served_worker
from crossrank.worker.bench.suite import (
    BenchConfig,
    _serve_args,
    _worker_settings,
    host_path,
    model_on_one_thread,
    stream_through_process,
)
from crossrank.worker.bench.workload import make_workload

log = logging.getLogger(__name__)

SCHEMA = "crossrank-bench-host/1"
TARGETS = {"vs_bound": 0.7, "cpu_vs_ideal": 1.3}  # issue 19, on a CPU: at least, and at most


def run(cfg: BenchConfig, rounds: int) -> dict[str, Any]:
    from crossrank.worker.server import create_server

    if cfg.device != "cpu":
        raise ValueError("--host-path measures a CPU's bound (its model on one thread); use --device cpu")
    workload = make_workload(cfg.queries, seed=cfg.seed, fixed_length=cfg.fixed_length)
    pairs = sum(len(q.documents) for q in workload)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    server = create_server(_worker_settings(cfg))  # in this process, for T1 and M1 only
    measured = []
    try:
        if not server.wait_ready(1800):
            raise RuntimeError(f"worker failed to load {cfg.model_path}: {server.engine.load_error}")
        engine = server.engine
        graph = "traced" if engine.scorer.traced is not None else "eager"  # what auto picked: the served one's too
        with served_worker(_serve_args(cfg)) as worker:
            runners.run_stream(worker.address, workload[:4], cfg.concurrency)  # warm-up
            for k in range(rounds):
                log.info("round %d of %d: T1, M1, then the worker's stream", k + 1, rounds)
                t1 = runners.run_tokenizer(engine.scorer.tokenizer, workload, engine.scorer.max_length)
                m1 = model_on_one_thread(engine, workload)
                threads_before = thread_cpu.cpu_by_role(worker.pid)
                stream, client_cpu_s = stream_through_process(worker, workload, cfg)
                by_thread = thread_cpu.ms_per_pair(threads_before, thread_cpu.cpu_by_role(worker.pid), pairs)
                runs = {r.name: {"pairs_per_s": pairs / r.wall_s, "cpu_ms_per_pair": r.cpu_s * 1e3 / pairs}
                        for r in (t1, m1, stream)}
                row = host_path(runs, cfg.frontends)
                measured.append(row | {
                    "cpu_vs_ideal": round(row["worker_cpu_ms_per_pair"] / row["ideal_cpu_ms_per_pair"], 3),
                    "worker_cores": round(stream.cpu_s / stream.wall_s, 2),
                    "client_cores": round(client_cpu_s / stream.wall_s, 2),
                    "thread_cpu_ms_per_pair": by_thread})
    finally:
        server.stop(1.0)
    # Each figure's own median, so the median row's ratios are the rounds' median ratios.
    median = {key: statistics.median(r[key] for r in measured) for key in measured[0]
              if key not in ("frontends", "thread_cpu_ms_per_pair")}
    median["thread_cpu_ms_per_pair"] = {role: statistics.median(r["thread_cpu_ms_per_pair"].get(role, 0.0)
                                                                for r in measured)
                                        for role in measured[0]["thread_cpu_ms_per_pair"]}
    return {
        "schema": SCHEMA,
        "date": started,
        "machine": report.machine() | {"load_average_after": os.getloadavg()},
        "config": {"model": cfg.model_label, "dtype": cfg.dtype, "backend": cfg.backend,
                   "torch_graph": cfg.torch_graph, "graph": graph, "frontends": cfg.frontends, "queries": len(workload),
                   "pairs": pairs, "rounds": rounds},
        "rounds": measured,
        "median": median,
        "targets": {
            "host_stream_vs_bound": {"value": median["vs_bound"], "target": TARGETS["vs_bound"],
                                     "met": median["vs_bound"] >= TARGETS["vs_bound"]},
            "host_cpu_per_pair_vs_ideal": {"value": median["cpu_vs_ideal"],
                                           "target": TARGETS["cpu_vs_ideal"],
                                           "met": median["cpu_vs_ideal"] <= TARGETS["cpu_vs_ideal"]},
        },
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Every round, then the medians and the targets; each line within 80 columns."""
    c = result["config"]
    lines = [f"host path: {Path(c['model']).name}, {c['dtype']}, {c.get('graph', c['torch_graph'])} graph, "
             f"{c['frontends']} frontends"[:80],
             f"{c['pairs']:,} pairs a round; T1, M1, bound, worker: pairs/s; CPU ms: the worker's a pair",
             f"{'round':<7}{'T1':>7}{'M1':>7}{'bound':>8}{'worker':>8}{'vs bound':>10}{'CPU ms':>9}{'vs ideal':>10}"]
    rows = [(str(k + 1), r) for k, r in enumerate(result["rounds"])] + [("median", result["median"])]
    for label, r in rows:
        lines.append(f"{label:<7}{r['t1_pairs_per_s']:>7,.0f}{r['m1_pairs_per_s']:>7,.0f}"
                     f"{r['bound_pairs_per_s']:>8,.0f}{r['worker_pairs_per_s']:>8,.0f}{r['vs_bound']:>9.2f}x"
                     f"{r['worker_cpu_ms_per_pair']:>9.3f}{r['cpu_vs_ideal']:>9.2f}x")
    lines += _thread_lines(result["median"])
    for name, t in result["targets"].items():
        word = "at most" if name.endswith("ideal") else "target"
        lines.append(f"target {name}: {t['value']:.3f} ({word} {t['target']}) {'met' if t['met'] else 'NOT met'}")
    return lines


def _thread_lines(median: dict[str, Any]) -> list[str]:
    """The median CPU a pair by thread, the forward and the tokenizer each beside its own ideal (1/M1, 1/T1)."""
    split = median.get("thread_cpu_ms_per_pair") or {}
    if not split:
        return []
    ideal = {"forward": 1e3 / median["m1_pairs_per_s"], "tokenize": 1e3 / median["t1_pairs_per_s"]}
    parts = [f"{role} {ms:.3f}" + (f" (ideal {ideal[role]:.3f})" if role in ideal else "")
             for role, ms in split.items()]
    return textwrap.wrap("CPU ms a pair by thread, medians: " + ", ".join(parts), 80, subsequent_indent="  ")
