"""One Prometheus endpoint for every process of `crossrank serve --frontends N`.

Each child serves its own registry on a private loopback port and writes that port to a file
in the supervisor's folder; the supervisor's `--metrics-port` endpoint reads every child's at
each scrape and returns them as one exposition, each series labelled with its `process` (core,
frontend-0, ...). So request metrics (counted by the frontends) and batch metrics (counted by
the core) come from one place, and `sum without (process)` gives the worker's totals. This
keeps every metric type as it is, including the gauges read when scraped, which
prometheus-client's multiprocess mode does not support.
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

SCRAPE_TIMEOUT = 2.0


def serve_private(registry: CollectorRegistry, folder: Path, role: str) -> None:
    """In a child: serve `registry` on a free loopback port, and say which in `folder`."""
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    path = folder / f"metrics-{role}"
    path.with_suffix(".tmp").write_text(str(server.server_port))
    path.with_suffix(".tmp").replace(path)  # never a half-written port


class ChildrenCollector:
    """Every child's metrics, read when scraped; a child that is restarting is left out of that scrape."""

    def __init__(self, folder: Path):
        self.folder = folder

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for path in sorted(self.folder.glob("metrics-*")):
            if path.suffix == ".tmp":
                continue
            role = path.name.removeprefix("metrics-")
            try:
                url = f"http://127.0.0.1:{int(path.read_text())}/metrics"
                with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as response:
                    text = response.read().decode()
            except (OSError, ValueError):
                continue
            for family in text_string_to_metric_families(text):
                into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type,
                                                             family.unit))
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "process": role}, sample.value, sample.timestamp,
                                    sample.exemplar)
        yield from merged.values()


def serve_public(port: int, folder: Path) -> None:
    """In the supervisor: the worker's one `/metrics`, on `port`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ChildrenCollector(folder))  # type: ignore[arg-type] (a collector by duck typing)
    start_http_server(port, registry=registry)


def forget(folder: Path, role: str) -> None:
    """A child has died: its port is no one's now (its successor writes its own)."""
    with contextlib.suppress(FileNotFoundError):
        (folder / f"metrics-{role}").unlink()
