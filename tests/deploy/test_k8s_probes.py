"""The rendered Redis and Chroma containers' commands and probes, run for real as local processes:
Redis with the rendered arguments answers the rendered probe and the pipeline's URL, and a real
`chroma run` that `crossrank up`'s own check finds ready answers the rendered probe path."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from urllib.parse import urlsplit

import pytest
import redis
from support.kustomize import container, env_secrets, env_values, expand, one, overlay_path, port_numbers, render
from support.pipeline import ChromaServer, wait_for

from crossrank.common.net import free_port

PASSWORD = "0123456789abcdef"  # hex, as the guide makes it


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render(overlay_path("gpu"))  # Redis and Chroma are the same in every overlay


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_redis_runs_the_rendered_command_and_answers_its_probe_and_the_pipeline(objects, tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server on the PATH: sudo apt install redis-server")
    c = container(one(objects, "StatefulSet", "crossrank-redis"))
    secret_env = dict.fromkeys(env_secrets(c), PASSWORD)
    args = [expand(a, secret_env) for a in c["args"]]
    args[args.index("--dir") + 1] = str(tmp_path)  # the claim's mount point, here
    port = free_port()
    proc = subprocess.Popen([server, *args, "--port", str(port), "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    try:
        url = env_values(container(one(objects, "Deployment", "crossrank-pipeline")))["CROSSRANK_REDIS_URL"]
        parts = urlsplit(expand(url, {"REDIS_PASSWORD": PASSWORD}))
        with redis.Redis.from_url(f"redis://:{parts.password}@127.0.0.1:{port}{parts.path}") as local:
            wait_for(lambda: _answers(local), 10, "redis-server with the rendered arguments")
            assert local.config_get("appendonly") == {"appendonly": "yes"}
        probe = c["readinessProbe"]["exec"]["command"]
        result = subprocess.run(
            [probe[0], "-p", str(port), *probe[1:]],
            env={**os.environ, **secret_env},
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.stdout.strip() == "PONG", result.stdout + result.stderr
        assert c["livenessProbe"]["exec"]["command"] == probe
        with redis.Redis(port=port) as anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.ping()
    finally:
        proc.terminate()
        proc.wait(10)


def test_chroma_answers_its_probe_path_once_crossrank_up_finds_it_ready(objects, tmp_path):
    c = container(one(objects, "StatefulSet", "crossrank-chroma"))
    chroma = ChromaServer(tmp_path / "data", tmp_path / "chroma.log")
    try:
        chroma.wait_ready()  # crossrank.pipeline.stack.chroma_answers, as `crossrank up` waits
        for kind in ("readinessProbe", "livenessProbe"):
            check = c[kind]["httpGet"]
            assert check["port"] in port_numbers(c)
            with urllib.request.urlopen(f"{chroma.url}{check['path']}", timeout=5) as response:
                assert response.status == 200, kind
    finally:
        chroma.stop()
