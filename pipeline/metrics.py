"""The pipeline's Prometheus metrics, read from Redis at scrape time.

Job state lives in Redis and chunks run in many pool processes and replicas, so the numbers are
collected from there rather than counted in one process: every pipeline worker reports the same
totals, and a restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crossrank.pipeline.jobs import STATES, JobStore
from crossrank.pipeline.settings import PipelineSettings


class PipelineCollector(Collector):
    def __init__(self, jobs: JobStore):
        self.jobs = jobs

    def collect(self) -> Iterator[Metric]:
        by_state = GaugeMetricFamily("crossrank_pipeline_jobs", "Jobs by kind and state (most recent 10,000).",
                                     labels=["kind", "state"])
        states = self.jobs.states()
        for kind in ("index", "rerank"):
            for state in STATES:
                by_state.add_metric([kind, state], states.get((kind, state), 0))
        yield by_state
        stats = self.jobs.stats()
        chunks = CounterMetricFamily("crossrank_pipeline_chunks", "Chunks finished, by kind and outcome.",
                                     labels=["kind", "outcome"])
        retries = CounterMetricFamily("crossrank_pipeline_retries", "Chunk retries after a failure, by kind.",
                                      labels=["kind"])
        for kind in ("index", "rerank"):
            for outcome in ("ok", "failed"):
                chunks.add_metric([kind, outcome], stats.get(f"chunks:{kind}:{outcome}", 0))
            retries.add_metric([kind], stats.get(f"retries:{kind}", 0))
        yield chunks
        yield retries


def registry_for(settings: PipelineSettings) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PipelineCollector(JobStore.from_settings(settings)))
    return registry


def serve_metrics(port: int, settings: PipelineSettings, addr: str = "0.0.0.0") -> None:
    start_http_server(port, addr=addr, registry=registry_for(settings))
