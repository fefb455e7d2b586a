"""The settings each pipeline command takes as flags, generated from `PipelineSettings`: a command
lists only what it uses (submitting needs Redis; reading results Redis and Chroma; `search` Chroma and
the workers), and every other setting still comes from its CROSSRANK_* variable."""

from __future__ import annotations

from crossrank.client.cli_options import WORKER_SETTINGS, json_option
from crossrank.pipeline.settings import PipelineSettings

__all__ = ["json_option", "pipeline_options", "redis_options", "results_options", "search_options", "worker_options"]

REDIS = ("redis_url",)
CHROMA = ("chroma_url", "chroma_path")

# Each decorator passes `settings` (a PipelineSettings) to the command.
redis_options = PipelineSettings.options(*REDIS)
results_options = PipelineSettings.options(*REDIS, *CHROMA)
search_options = PipelineSettings.options(*CHROMA, *WORKER_SETTINGS)
# Redis, Chroma and the workers: a command that may do all three (`crossrank eval`).
pipeline_options = PipelineSettings.options(*REDIS, *CHROMA, *WORKER_SETTINGS)
worker_options = PipelineSettings.options(*REDIS, *CHROMA, *WORKER_SETTINGS, "pipeline_metrics_port", "json_logs")
