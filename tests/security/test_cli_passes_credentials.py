"""`crossrank rerank` passes --token and --ca-cert (or their CROSSRANK_* variables) through to the worker."""

from __future__ import annotations

import json
import os
import subprocess

from support.credentials import TOKEN
from support.workers import crossrank_command

ARGS = ["rerank", "capital of france", "-d", "paris is the capital of france", "-d", "the weather is cold",
        "--json", "--timeout", "10"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(crossrank_command(*args), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_token_flag(token_worker):
    result = run(*ARGS, "--target", token_worker.address, "--token", TOKEN)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["results"]) == 2


def test_token_from_the_environment(token_worker):
    result = run(*ARGS, "--target", token_worker.address, env={"CROSSRANK_AUTH_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr


def test_missing_token_is_reported(token_worker):
    result = run(*ARGS, "--target", token_worker.address, env={"CROSSRANK_AUTH_TOKEN": ""})
    assert result.returncode != 0
    assert "AuthenticationError" in result.stderr


def test_ca_cert_flag(tls_worker, tls_files):
    cert, _ = tls_files
    result = run(*ARGS, "--target", tls_worker.address, "--ca-cert", str(cert))
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["results"]) == 2
