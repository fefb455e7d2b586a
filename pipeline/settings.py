"""The pipeline's settings: the client's (worker target, token, CA, timeout) and where Redis and Chroma
are, each read from a CROSSRANK_* variable, with defaults that work on one machine (Redis on localhost,
Chroma embedded under ./data/chroma, the worker on :50051).

The Celery workers, the CLI that submits jobs and the Python API all build the same object when they
start, so a variable set once in the environment (or in docker-compose.yml) reaches every process.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossrank.client.settings import ClientSettings, SettingsError, mask_url, setting

__all__ = ["PipelineSettings", "SettingsError"]


@dataclass(frozen=True)
class PipelineSettings(ClientSettings):
    redis_url: str = setting("redis://localhost:6379/0", "Celery broker, result backend and job state.")
    chroma_url: str = setting(
        "", "Chroma server (`chroma run`), e.g. http://localhost:8000. Needed when several processes write.")
    chroma_path: str = setting("./data/chroma", "Embedded Chroma folder, used when chroma_url is empty.")
    key_prefix: str = setting("crossrank", "Prefix of the job-state keys in Redis. Celery's queues are not "
                                           "prefixed: separate pipelines need separate Redis dbs.")
    index_chunk_size: int = setting(64, "Documents per index task.")
    rerank_chunk_size: int = setting(
        0, "Queries per rerank task; 0 = auto: about 1024 candidate pairs per task (20 queries at initial_k 50). "
        "Small tasks leave the worker idle between them (docs/benchmarks.md).")
    embed_batch_size: int = setting(64, "Texts per Embed call.")
    passage_chars: int = setting(1000, "Characters per passage; longer documents are split.")
    passage_overlap: int = setting(200, "Characters shared by consecutive passages of one document.")
    task_retries: int = setting(5, "Retries of a failed chunk (exponential backoff) before it is recorded "
                                   "as an error of its job.")
    pipeline_metrics_port: int = setting(0, "Serve the pipeline's Prometheus metrics on this port; 0 turns it off.",
                                         flag="--metrics-port")
    json_logs: bool = setting(False, "JSON log lines carrying the task id, job id and chunk.",
                              flag="--json-logs", off_flag="--text-logs")
    bulk_priority: int = setting(
        10, "Priority of the jobs' calls to the worker (lower is sooner): above 0, the default of live queries, "
        "the worker serves live queries first and the jobs in the room left; 0 treats jobs as live.")
    stall_seconds: float = setting(30.0, "A running chunk whose worker sends no heartbeat for this long is stalled: "
                                         "a pipeline worker sends it again.")

    def validate(self) -> PipelineSettings:
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"CROSSRANK_REDIS_URL must be a redis:// URL, not {mask_url(self.redis_url)!r}")
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            raise SettingsError(f"CROSSRANK_CHROMA_URL must be an http(s):// URL, not {mask_url(self.chroma_url)!r}")
        if self.rerank_chunk_size < 0:
            raise SettingsError("CROSSRANK_RERANK_CHUNK_SIZE must be at least 0 (0 = auto)")
        for name in ("index_chunk_size", "embed_batch_size", "passage_chars"):
            if getattr(self, name) < 1:
                raise SettingsError(f"CROSSRANK_{name.upper()} must be at least 1")
        if not 0 <= self.passage_overlap < self.passage_chars:
            raise SettingsError("CROSSRANK_PASSAGE_OVERLAP must be at least 0 and below CROSSRANK_PASSAGE_CHARS")
        if self.task_retries < 0:
            raise SettingsError("CROSSRANK_TASK_RETRIES must be at least 0")
        if not 0 <= self.pipeline_metrics_port <= 65535:
            raise SettingsError("CROSSRANK_PIPELINE_METRICS_PORT must be a port number, or 0 (off)")
        if self.stall_seconds <= 0:
            raise SettingsError("CROSSRANK_STALL_SECONDS must be above 0")
        return super().validate()
