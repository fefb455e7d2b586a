"""The pipeline's settings: one name each, read from a CROSSRANK_* variable, with defaults that work
on one machine (Redis on localhost, Chroma embedded under ./data/chroma, the worker on :50051).

The Celery workers, the CLI that submits jobs and the Python API all read the same object, so a
variable set once in the environment (or in docker-compose.yml) reaches every process.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from crossrank.pipeline.masking import mask_url


def setting(default: Any, help: str, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "secret": secret})


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use; the message names the variable."""


@dataclass(frozen=True)
class PipelineSettings:
    redis_url: str = setting("redis://localhost:6379/0", "Celery broker, result backend and job state.")
    chroma_url: str = setting(
        "", "Chroma server (`chroma run`), e.g. http://localhost:8000. Needed when several processes write.")
    chroma_path: str = setting("./data/chroma", "Embedded Chroma folder, used when chroma_url is empty.")
    worker_target: str = setting(
        "localhost:50051", "gRPC worker(s): host:port, a comma-separated list, or dns:///name:port.")
    auth_token: str = setting("", "Bearer token the gRPC workers require, if any.", secret=True)
    tls_ca: str = setting("", "PEM CA certificate: call the workers over TLS.")
    timeout: float = setting(120.0, "Deadline per worker call in seconds, retries on UNAVAILABLE included.")
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
    stall_seconds: float = setting(30.0, "A running chunk whose worker sends no heartbeat for this long is stalled: "
                                         "a pipeline worker sends it again.")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> PipelineSettings:
        """Defaults, then CROSSRANK_<NAME> variables, then `overrides` (flags); validated."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"CROSSRANK_{f.name.upper()}")
            if raw is None:
                continue
            try:
                values[f.name] = type(f.default)(raw)
            except ValueError:
                shown = "***" if f.metadata["secret"] else mask_url(raw)
                raise SettingsError(f"CROSSRANK_{f.name.upper()}={shown!r} is not a valid "
                                    f"{type(f.default).__name__}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).validate()

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
        if self.stall_seconds <= 0:
            raise SettingsError("CROSSRANK_STALL_SECONDS must be above 0")
        if self.task_retries < 0 or self.timeout <= 0:
            raise SettingsError("CROSSRANK_TASK_RETRIES must be >= 0 and CROSSRANK_TIMEOUT > 0")
        return self

    def client_kwargs(self) -> dict[str, Any]:
        """What `CrossrankClient` needs to reach the workers."""
        return {"target": self.worker_target, "token": self.auth_token or None,
                "ca_cert": self.tls_ca or None, "timeout": self.timeout}
