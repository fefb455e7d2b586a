"""The pipeline's real parts as processes (Celery workers, `chroma run`), and helpers the tests share.

Every Celery worker here consumes the same `index` and `rerank` queues of one Redis db (REDIS_URL), so at most
one runs at a time: each is module-scoped (or started inside one test), and the db is flushed
before it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossrank.common.net import free_port
from support.paths import SHARED
from support.redis_server import PIPELINE_DB, redis_url_for
from support.workers import crossrank_command

REDIS_URL = redis_url_for(PIPELINE_DB)
MSMARCO = SHARED / "data" / "agentset-msmarco"


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL, decode_responses=True)


def flush_db() -> None:
    """Nothing left in our db from an earlier module: no queued tasks, no jobs."""
    client = redis_client()
    try:
        client.flushdb()
    finally:
        client.close()


def base_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any CROSSRANK_* variable, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSRANK_")}
    # COLUMNS: rich tables as wide as a terminal, not cut at 80 columns when piped.
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", COLUMNS="200")
    env.update(overrides)
    return env


def settings_for(env: dict[str, str]):
    """The PipelineSettings that a process started with `env` reads."""
    from crossrank.pipeline.settings import PipelineSettings

    return PipelineSettings.from_env(env)


class CeleryWorker:
    """A pipeline Celery worker process, started the way an operator starts one.

    entry="crossrank": `crossrank pipeline worker`; entry="celery": `celery -A crossrank.pipeline worker`.
    concurrency=None leaves the number of pool processes to the pipeline's default.
    """

    def __init__(self, env: dict[str, str], log_path: Path, *, entry: str = "crossrank",
                 queues: str = "index,rerank", concurrency: int | None = 1):
        from celery.utils.nodenames import host_format

        from crossrank.pipeline.local_process import LocalProcess

        name = f"pytest-{uuid.uuid4().hex[:8]}@%h"
        self.node = host_format(name)
        self.env = env
        pool = ["--concurrency", str(concurrency)] if concurrency else []
        if entry == "crossrank":
            argv = crossrank_command("pipeline", "worker", *pool, "--hostname", name, "--queues", queues)
        elif entry == "celery":
            argv = [sys.executable, "-m", "celery", "-A", "crossrank.pipeline", "worker", *pool,
                    "--hostname", name, "-Q", queues, "--loglevel", "INFO"]
        else:
            raise ValueError(entry)
        # Its own process group, so that stopping it also reaches its pool processes.
        self.process = LocalProcess("celery", argv, log_path, env).start()

    def wait_ready(self, timeout: float = 120) -> None:
        from crossrank.pipeline.stack import celery_node_answers

        redis_url = settings_for(self.env).redis_url
        self.process.wait_healthy(lambda: celery_node_answers(self.node, redis_url), timeout, interval=0.2)

    def pool_size(self) -> int:
        """How many pool processes the running worker has, as it reports itself."""
        from crossrank.pipeline.stack import celery_node_reply

        stats = celery_node_reply(self.node, settings_for(self.env).redis_url, "stats", timeout=5)
        assert stats, f"no stats from {self.node}"
        return stats["pool"]["max-concurrency"]

    def output(self) -> str:
        return self.process.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.stop(grace=30)  # SIGTERM is a warm shutdown: a running task finishes first


def start_celery(env: dict[str, str], log_dir: Path, **kwargs) -> CeleryWorker:
    worker = CeleryWorker(env, log_dir / f"celery-{uuid.uuid4().hex[:6]}.log", **kwargs)
    try:
        worker.wait_ready()
    except BaseException:
        worker.stop()
        raise
    return worker


class ChromaServer:
    """`chroma run --path DIR --port FREE` on 127.0.0.1."""

    def __init__(self, path: Path, log_path: Path):
        from crossrank.pipeline.local_process import LocalProcess

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        chroma = Path(sys.executable).parent / "chroma"
        self.process = LocalProcess("chroma", [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1",
                                               "--port", str(self.port)], log_path).start()

    def wait_ready(self, timeout: float = 60) -> None:
        from crossrank.pipeline.stack import chroma_answers

        self.process.wait_healthy(lambda: chroma_answers(self.url), timeout, interval=0.2)

    def stop(self) -> None:
        self.process.stop()


@dataclass
class Pipeline:
    """One pipeline's processes share `env`; the test process reaches the same parts through `settings`."""

    env: dict[str, str]
    celery: CeleryWorker | None = None
    metrics_url: str = ""  # the Celery worker's --metrics-port, when it has one

    @property
    def settings(self):
        return settings_for(self.env)

    def cli(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(crossrank_command(*args), capture_output=True, text=True, timeout=timeout,
                              env=self.env)

    def cli_json(self, *args: str, timeout: float = 240):
        result = self.cli(*args, "--json", timeout=timeout)
        assert result.returncode == 0, f"crossrank {' '.join(args)} exited {result.returncode}:\n" \
                                       f"{result.stdout}\n{result.stderr}"
        return json.loads(result.stdout)

    def jobs(self):
        from crossrank.pipeline.jobs import JobStore

        return JobStore.from_settings(self.settings)

    def chroma(self):
        from crossrank.pipeline.store import open_chroma

        return open_chroma(self.settings)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not reached in {timeout}s")


def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# A small bilingual corpus: short documents, and long ones that split into several passages.
CORPUS = [
    {"id": "rag-zh", "text": "RAG是检索增强生成技术，结合检索和生成模型。", "metadata": {"lang": "zh"}},
    {"id": "vector-zh", "text": "向量数据库用于存储和检索高维向量。", "metadata": {"lang": "zh"}},
    {"id": "llm-zh", "text": "大语言模型可以生成自然语言文本。", "metadata": {"lang": "zh"}},
    {"id": "beijing-zh", "text": "北京是中国的首都。", "metadata": {"lang": "zh"}},
    {"id": "rag-long-zh", "text": "RAG技术可以提升问答系统的准确性。" * 12, "metadata": {"lang": "zh"}},
    {"id": "rag-en", "text": "retrieval augmented generation combines search with a language model",
     "metadata": {"lang": "en", "source": {"kind": "wiki"}}},
    {"id": "paris-en", "text": "paris is the capital of france", "metadata": {"lang": "en"}},
    {"id": "vector-en", "text": "a vector database stores embeddings for search", "metadata": {"lang": "en"}},
    {"id": "market-en", "text": "the stock market fell on monday", "metadata": {"lang": "en"}},
    {"id": "flu-en", "text": "how to treat a cold or the flu: rest, fluids and time", "metadata": {"lang": "en"}},
    {"id": "long-en", "text": " ".join(["the weather in berlin germany is cold in the winter and warm in summer."] * 8),
     "metadata": {"lang": "en"}},
    {"text": "a document without an id gets one from its text"},
]
QUERIES = ["什么是RAG技术？", "what is retrieval augmented generation", "capital city of france",
           "北京", "how do i treat the flu", "vector search database"]


def send_chunks(settings, chunks: Sequence) -> None:
    """Put chunk messages (IndexChunk or RerankChunk, all of one kind) on the queue as the API does; a chunk
    listed twice is delivered twice."""
    from crossrank.pipeline.chunks import IndexChunk, enqueue

    kind = "index" if isinstance(chunks[0], IndexChunk) else "rerank"
    enqueue(settings, kind, [c.to_message() for c in chunks])
