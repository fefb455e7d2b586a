"""Turn runs into numbers (throughput, latency percentiles, ratio to (a), MFU), a JSON report and a plot."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from crossrank.worker.bench.runners import Run

SCHEMA = "crossrank.bench/1"
RUN_KEYS = ("name", "concurrency", "wall_s", "pairs", "tokens", "pairs_per_s", "tokens_per_s", "p50_ms", "p95_ms",
            "p99_ms", "ratio_vs_a", "mfu", "mfu_vs_bf16_peak", "cpu_use", "cpu_ms_per_pair", "padding")
REPORT_KEYS = ("schema", "date", "machine", "config", "model", "workload", "peaks_flops", "runs", "sweep",
               "cpu", "peers_unavailable", "targets")


def summarize(run: Run, pairs: int, tokens: int, flops: float, peak: float, bf16_peak: float | None,
              baseline_pairs_per_s: float | None) -> dict[str, Any]:
    pct = np.percentile(np.asarray(run.latencies_s) * 1e3, [50, 95, 99])
    pairs_per_s = pairs / run.wall_s
    achieved = flops / run.wall_s
    return {
        "name": run.name,
        "concurrency": run.concurrency,
        "wall_s": round(run.wall_s, 3),
        "pairs": pairs,
        "tokens": tokens,
        "pairs_per_s": round(pairs_per_s, 1),
        "tokens_per_s": round(tokens / run.wall_s, 1),
        "p50_ms": round(float(pct[0]), 1),
        "p95_ms": round(float(pct[1]), 1),
        "p99_ms": round(float(pct[2]), 1),
        "ratio_vs_a": round(pairs_per_s / baseline_pairs_per_s, 3) if baseline_pairs_per_s else 1.0,
        "mfu": round(achieved / peak, 4),
        "mfu_vs_bf16_peak": round(achieved / bf16_peak, 4) if bf16_peak else None,
        "cpu_use": round(run.cpu_s / run.wall_s, 2),  # cores this process kept busy, on average
        "cpu_ms_per_pair": round(run.cpu_s * 1e3 / pairs, 4),
        "padding": round(run.padding, 3) if run.padding is not None else None,
    }


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "torch": torch.__version__, "cpu_count": os.cpu_count(),
                            "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
        info["cpu"] = names[0] if names else platform.processor()
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(
            ("avx512_bf16", "amx", "avx512f", "avx2", "avx512_vnni", "avx_vnni")))
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    return info


def cpu_choice(backend: str, dtype: str, reason: str) -> dict[str, Any]:
    """This CPU's class, what `--backend auto --dtype auto` picks on it and why, and what the run served with."""
    from crossrank.worker.engine.cpu_class import NATIVE_BF16, choose, cpu_flags, installed_backends

    flags = cpu_flags()
    auto = choose(flags, "auto", "auto", installed_backends())
    return {"class": auto.cpu_class, "flags": sorted(flags), "native_bf16": auto.cpu_class in NATIVE_BF16,
            "auto": {"backend": auto.backend, "dtype": auto.dtype, "reason": auto.reason},
            "serving": {"backend": backend, "dtype": dtype, "reason": reason}}


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_plot(report: dict[str, Any], path: Path) -> None:
    """Throughput and latency against concurrency, with (a) and the stream as reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    sweep = report["sweep"]
    levels = [s["concurrency"] for s in sweep]
    a = report["runs"]["a_predict"]
    d = report["runs"]["d_stream"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(levels, [s["pairs_per_s"] for s in sweep], "o-", label="worker, unary Rerank")
    left.axhline(a["pairs_per_s"], color="grey", ls="--", label="(a) CrossEncoder.predict, batch 32")
    left.axhline(d["pairs_per_s"], color="tab:green", ls=":", label=f"(d) RerankStream, {d['concurrency']} in flight")
    left.set(xscale="log", xlabel="concurrent clients", ylabel="pairs / s", title="Throughput")
    left.set_xticks(levels, [str(x) for x in levels], minor=False)
    left.xaxis.set_minor_locator(NullLocator())
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
        right.plot(levels, [s[key] for s in sweep], style, label=key.replace("_ms", ""))
    right.axhline(a["p50_ms"], color="grey", ls="--", label="(a) p50")
    right.set(xscale="log", xlabel="concurrent clients", ylabel="latency per request (ms)", title="Latency")
    right.set_xticks(levels, [str(x) for x in levels], minor=False)
    right.xaxis.set_minor_locator(NullLocator())
    right.set_ylim(bottom=0)
    right.legend(fontsize=8)
    cfg = report["config"]
    fig.suptitle(f"crossrank bench: {report['model']['label']}, {cfg['device']} {cfg['dtype']} "
                 f"{cfg['backend']}, {report['workload']['pairs']} pairs", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
