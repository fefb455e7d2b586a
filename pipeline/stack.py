"""`LocalStack`: docker-compose.yml's topology as local processes, for `crossrank up`, the demo and tests.

    with LocalStack(workers=2, pipeline_workers=1, model="path/to/cross-encoder") as stack:
        CrossrankClient(stack.worker_target).rerank(...)
        os.environ.update(stack.env)   # what the pipeline API and the CLI read

It starts, in order: Redis (only if none answers at `redis_url`: then a private `redis-server` on a
free port, without persistence), a Chroma server (`chroma run`), N gRPC workers (`crossrank serve`)
and M Celery workers (`crossrank pipeline worker`), waiting until each is healthy before the next
tier starts. Leaving the `with` block, an exception or Ctrl-C included, stops them in reverse order.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from crossrank.common.net import free_port, serving
from crossrank.pipeline.local_process import LocalProcess, ServiceFailed
from crossrank.pipeline.masking import mask_url
from crossrank.pipeline.settings import PipelineSettings

__all__ = ["LocalStack", "ServiceFailed", "free_port"]

DEFAULT_REDIS_URL: str = PipelineSettings.redis_url
_CROSSRANK = [sys.executable, "-m", "crossrank.client"]


def redis_answers(url: str) -> bool:
    import redis

    try:
        with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as r:
            return bool(r.ping())
    except redis.RedisError:
        return False


def chroma_answers(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as response:
        return response.status == 200


def grpc_serving(address: str) -> bool:
    return serving(address)


def celery_node_reply(node: str, broker_url: str, command: str = "ping", timeout: float = 1.0) -> dict | None:
    """The reply of the Celery worker named `node` to a control command ("ping", "stats"), or None.

    Kombu's mailbox, which Celery's control commands use, with no second Celery app: an app's control
    commands publish on its own broker whatever connection they are given."""
    from kombu import Connection
    from kombu.pidbox import Mailbox

    with Connection(broker_url) as connection:
        replies = Mailbox("celery", type="fanout", accept=["json"])(connection).call([node], command, timeout=timeout)
    return next((reply[node] for reply in replies or () if node in reply), None)


def celery_node_answers(node: str, broker_url: str) -> bool:
    """True once the Celery worker named `node` answers a control ping through the broker."""
    return celery_node_reply(node, broker_url) is not None


@dataclass
class LocalStack:
    workers: int = 1
    pipeline_workers: int = 1
    model: str | None = None  # None: the worker's own CROSSRANK_MODEL or default
    embed_model: str | None = None
    # auto, cpu, cuda:N, or "cuda" to give worker i the device cuda:i (one worker per GPU).
    device: str = "auto"
    redis_url: str = DEFAULT_REDIS_URL
    concurrency: int = 1  # Celery processes per pipeline worker
    worker_args: tuple[str, ...] = ()  # extra `crossrank serve` flags
    workdir: Path | None = None  # logs, Chroma data, private Redis; a temporary folder when None
    host: str = "127.0.0.1"
    startup_timeout: float = 600.0  # a first start may download models
    # Embedded Chroma (a folder in workdir) instead of a `chroma run` server: right when one
    # process writes, i.e. one pipeline worker with concurrency 1, as in `crossrank demo`.
    embedded_chroma: bool = False
    chroma_path: str = field(default="", init=False)
    chroma_url: str = field(default="", init=False)
    worker_addresses: list[str] = field(default_factory=list, init=False)
    processes: list[LocalProcess] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.workers < 1 or self.pipeline_workers < 0:
            raise ValueError("a stack needs at least one worker and zero or more pipeline workers")
        if self.embedded_chroma and (self.pipeline_workers > 1 or self.concurrency > 1):
            raise ValueError("embedded Chroma takes one writing process: use a Chroma server for more")
        self._tempdir: tempfile.TemporaryDirectory | None = None

    # -- what clients need ---------------------------------------------------------------------

    @property
    def worker_target(self) -> str:
        return ",".join(self.worker_addresses)

    @property
    def env(self) -> dict[str, str]:
        """The CROSSRANK_* variables that point a client, the CLI or the pipeline API at this stack."""
        return {"CROSSRANK_WORKER_TARGET": self.worker_target, "CROSSRANK_REDIS_URL": self.redis_url,
                "CROSSRANK_CHROMA_URL": self.chroma_url, "CROSSRANK_CHROMA_PATH": self.chroma_path}

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalStack:
        try:
            self._prepare_workdir()
            self._start_redis()
            self._start_chroma()
            self._start_workers()
            self._start_pipeline_workers()
        except BaseException:  # Ctrl-C during start-up too: leave nothing behind
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every service, the last started first; safe to call twice."""
        while self.processes:
            self.processes.pop().stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def check(self) -> list[str]:
        """The services that have exited on their own (for a launcher watching the stack)."""
        return [p.name for p in self.processes if not p.running()]

    # -- the services --------------------------------------------------------------------------

    def _prepare_workdir(self) -> None:
        if self.workdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="crossrank-stack-")
            self.workdir = Path(self._tempdir.name)
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> LocalProcess:
        process = LocalProcess(name, argv, self.workdir / "logs" / f"{name}.log", env).start()
        self.processes.append(process)
        return process

    def _start_redis(self) -> None:
        if redis_answers(self.redis_url):
            return
        server = shutil.which("redis-server")
        if server is None:
            raise ServiceFailed(
                f"no Redis answers at {mask_url(self.redis_url)} and redis-server is not on the PATH. Start one, e.g. "
                "`docker run -d -p 6379:6379 redis:7` or `sudo apt install redis-server`, or point "
                "CROSSRANK_REDIS_URL (--redis-url) at yours.")
        port = free_port(self.host)
        data = self.workdir / "redis"
        data.mkdir(exist_ok=True)
        self.redis_url = f"redis://{self.host}:{port}/0"
        process = self._spawn("redis", [server, "--port", str(port), "--bind", self.host, "--save", "",
                                        "--appendonly", "no", "--dir", str(data)])
        process.wait_healthy(lambda: redis_answers(self.redis_url), timeout=30)

    def _start_chroma(self) -> None:
        if self.embedded_chroma:
            self.chroma_path = str(self.workdir / "chroma")
            return
        chroma = shutil.which("chroma", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                               os.environ.get("PATH", "")]))
        if chroma is None:
            raise ServiceFailed("the `chroma` command is missing: pip install 'crossrank[pipeline]'")
        port = free_port(self.host)
        self.chroma_url = f"http://{self.host}:{port}"
        process = self._spawn("chroma", [chroma, "run", "--host", self.host, "--port", str(port),
                                         "--path", str(self.workdir / "chroma")])
        process.wait_healthy(lambda: chroma_answers(self.chroma_url), timeout=60)

    def _worker_device(self, i: int) -> str:
        return f"cuda:{i}" if self.device == "cuda" else self.device

    def _start_workers(self) -> None:
        started = []
        for i in range(self.workers):
            address = f"{self.host}:{free_port(self.host)}"
            argv = [*_CROSSRANK, "serve", "--host", self.host, "--port", address.rsplit(":", 1)[1],
                    "--device", self._worker_device(i)]
            if self.model:
                argv += ["--model", self.model]
            if self.embed_model:
                argv += ["--embed-model", self.embed_model]
            started.append((self._spawn(f"worker-{i}", argv + list(self.worker_args)), address))
            self.worker_addresses.append(address)
        # Started together, so that several workers load their models at the same time.
        for process, address in started:
            process.wait_healthy(lambda a=address: grpc_serving(a), timeout=self.startup_timeout)

    def _start_pipeline_workers(self) -> None:
        env = {**os.environ, **self.env}
        started = []
        for i in range(self.pipeline_workers):
            node = f"crossrank-pipeline-{i}-{os.getpid()}@{socket.gethostname()}"
            argv = [*_CROSSRANK, "pipeline", "worker", "--concurrency", str(self.concurrency), "--hostname", node]
            started.append((self._spawn(f"pipeline-{i}", argv, env), node))
        for process, node in started:
            process.wait_healthy(lambda n=node: celery_node_answers(n, self.redis_url), timeout=120, interval=0.5)
