"""Every code block of the README runs as written, in order, as a new user would run them.

What stands in for the user's machine, and nothing else:
- the installed environment this test runs in is the quick start's install (its venv is linked
  into the working folder as `.venv`, and its `bin` is first on the PATH, as activation does);
- the tiny models stand in for the two local-model exports;
- a database of the tests' Redis (CROSSRANK_TEST_REDIS) stands in for the user's Redis, and the ports 50051 and
  8080 become free ports, so parallel runs on one machine keep apart.

A line marked `# runs until Ctrl-C` starts in the background, as in a second shell, and the next
line runs once it says it is ready; it is stopped with Ctrl-C's SIGINT at the end. Blocks the README
marks `<!-- readme-test: not run, WHY -->` (Docker, grpcurl, the test suite itself) are checked for
syntax only.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from support.paths import ROOT
from support.redis_server import LOCAL_STACK_DB, redis_url_for

from crossrank.common.net import free_port

README = (ROOT / "README.md").read_text(encoding="utf-8")
REDIS_URL = redis_url_for(LOCAL_STACK_DB)
# What each long-running command prints once it serves.
READY = re.compile(r"crossrank worker ready|celery@\S+ ready\.|Ctrl-C stops everything")
_BLOCK = re.compile(r"(?:<!-- readme-test: (?P<marker>.+?) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S)
# The quick start's install steps: what built the environment this test runs in.
_INSTALL = re.compile(r"python3 -m venv \.venv && |pip install torch==\S+ -e '\.\[[\w,]+\]' && ")


@dataclass
class Block:
    lang: str
    code: str
    marker: str | None

    @property
    def runs(self) -> bool:
        return not (self.marker or "").startswith("not run")


def readme_blocks() -> list[Block]:
    return [Block(m["lang"], m["code"], m["marker"]) for m in _BLOCK.finditer(README) if m["lang"]]


def _lines(code: str) -> list[str]:
    """Shell lines, backslash continuations joined."""
    return code.replace("\\\n", " ").strip().splitlines()


class User:
    """One working folder and environment; background services live until `stop_all`."""

    def __init__(self, tmp_path: Path, env: dict[str, str], ports: dict[str, str]):
        self.cwd, self.env, self.ports = tmp_path, env, ports
        self.services: list[tuple[subprocess.Popen, Path]] = []
        self.outputs: list[str] = []

    def text(self, code: str) -> str:
        for old, new in self.ports.items():
            code = code.replace(old, new)
        return code

    def bash(self, script: str) -> str:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", self.text(script)], cwd=self.cwd, env=self.env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
        self.outputs.append(result.stdout + result.stderr)
        return result.stdout

    def python(self, code: str) -> str:
        result = subprocess.run([sys.executable, "-c", self.text(code)], cwd=self.cwd, env=self.env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{code}\n{result.stdout}\n{result.stderr}"
        self.outputs.append(result.stdout)
        return result.stdout

    def background(self, line: str, timeout: float = 300) -> None:
        log = self.cwd / f"service-{len(self.services)}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(["bash", "-c", f"exec {self.text(line)}"], cwd=self.cwd, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.services.append((proc, log))
        deadline = time.monotonic() + timeout
        while not READY.search(log.read_text(errors="replace")):
            assert proc.poll() is None, f"{line} exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{line} not ready after {timeout}s:\n{log.read_text()}"
            time.sleep(0.3)

    def run_shell(self, code: str) -> None:
        pending: list[str] = []
        for line in _lines(code):
            if "# runs until Ctrl-C" in line:
                if pending:
                    self.bash("\n".join(pending))
                    pending = []
                self.background(line.split("#", 1)[0])
            else:
                pending.append(_INSTALL.sub("", line))
        if pending:
            self.bash("\n".join(pending))

    def stop_all(self) -> list[int]:
        """Ctrl-C to each service, the last started first; their exit codes."""
        codes = []
        for proc, _log in reversed(self.services):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(120)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            codes.append(proc.returncode)
        return codes


def test_the_readme_marks_only_what_cannot_run_here():
    blocks = readme_blocks()
    skipped = [b.marker for b in blocks if not b.runs]
    assert len([b for b in blocks if b.runs]) >= 8
    for marker in skipped:
        assert re.match(r"not run, .{10,}", marker), marker  # a reason a reader can check
    assert len(skipped) <= 5, skipped


def test_blocks_that_do_not_run_here_are_valid_syntax():
    for block in readme_blocks():
        if block.lang == "python":
            compile(block.code, "README.md", "exec")
        elif block.lang == "bash":
            result = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
            assert result.returncode == 0, block.code + result.stderr


@pytest.fixture()
def readme_redis():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.mark.slow
def test_every_readme_block_runs_as_written(tiny_cross_encoder, tiny_bi_encoder, readme_redis, tmp_path):
    venv = Path(sys.executable).parent.parent
    (tmp_path / ".venv").symlink_to(venv)
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "sample_data").symlink_to(ROOT / "pipeline" / "sample_data")
    grpc_port, http_port = str(free_port()), str(free_port())
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv),
           "HF_HUB_OFFLINE": "1", "CROSSRANK_MODEL": str(tiny_cross_encoder),
           "CROSSRANK_EMBED_MODEL": str(tiny_bi_encoder), "CROSSRANK_REDIS_URL": readme_redis,
           "CROSSRANK_CHROMA_PATH": str(tmp_path / "data" / "chroma"), "CROSSRANK_DEVICE": "cpu",
           "CROSSRANK_HOST": "127.0.0.1", "CROSSRANK_PORT": grpc_port,
           "CROSSRANK_WORKER_TARGET": f"localhost:{grpc_port}", "COLUMNS": "80"}
    user = User(tmp_path, env, {"50051": grpc_port, "8080": http_port})
    ran = []
    try:
        for block in readme_blocks():
            if not block.runs or block.code.lstrip().startswith("export CROSSRANK_MODEL="):
                continue
            if block.lang == "bash":
                user.run_shell(block.code)
                if "crossrank demo" in block.code:  # it ran in a Redis of its own, and left nothing here
                    with redis.Redis.from_url(readme_redis) as found:
                        assert found.dbsize() == 0
            elif block.lang == "python":
                user.python(block.code)
            ran.append(block.code.splitlines()[0])
    finally:
        codes = user.stop_all()
    assert codes and all(code == 0 for code in codes), codes
    out = "\n".join(user.outputs)
    # What the blocks print shows they did their work, not just exited 0.
    assert "The demo stack stops now" in out                   # the quick start's demo
    assert f"✓ worker-0 ({tiny_cross_encoder} on cpu) ready" in out  # its start-up, step by step
    assert '"results": [{"rank": 1' in out                     # rerank --docs-file --json
    assert "rag [" in out and "capital [" in out               # the SDK's stream, both requests
    assert "q-rag-zh: 什么是RAG技术？" in out                  # jobs results
    up_output = (tmp_path / f"service-{len(user.services) - 1}.log").read_text()
    assert "export CROSSRANK_WORKER_TARGET=" in up_output
    logs = Path(re.search(r"the logs are kept in (\S+)", up_output)[1])  # where `up` said, after it stopped
    assert (logs / "worker-0.log").is_file() and not (logs.parent / "chroma").exists()
    shutil.rmtree(logs.parent)
    assert len(ran) >= 8, ran
