"""Every grpcurl command in docs/clients.md and the README, run as written with the dev extra's
grpcurl against a live `crossrank serve` (a worker with a token, and one with TLS, for the commands
that say so), its output checked: rankings against the Python SDK's, descriptions against the
proto's own descriptors. Only the address changes: localhost:50051 becomes the worker's free port.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from support.dev_tools import dev_tool
from support.paths import ROOT
from support.workers import worker_in_process

from crossrank.client import CrossrankClient
from crossrank.protos import pb

DOCS = {name: (ROOT / name).read_text(encoding="utf-8") for name in ("docs/clients.md", "README.md")}
ADDRESS = "localhost:50051"
TOKEN = "grpcurl-s3cret"


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def grpcurl_commands(text: str) -> list[str]:
    """Each grpcurl command of the bash blocks, its continuation lines and multi-line quotes kept."""
    found, pending = [], ""
    for block in bash_blocks(text):
        for line in block.splitlines(keepends=True):
            pending += line
            if line.rstrip().endswith("\\"):
                continue
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # a quoted argument goes on over the next line
                continue
            if words[:1] == ["grpcurl"]:
                found.append(pending.strip())
            pending = ""
    return found


COMMANDS = [(name, command) for name, text in DOCS.items() for command in grpcurl_commands(text)]


def json_messages(text: str) -> list[dict]:
    """JSON objects one after another, as grpcurl reads (-d) and prints messages."""
    decoder, messages, text = json.JSONDecoder(), [], text.strip()
    while text:
        message, end = decoder.raw_decode(text)
        messages.append(message)
        text = text[end:].strip()
    return messages


def request_messages(command: str) -> list[dict]:
    words = shlex.split(command)
    return json_messages(words[words.index("-d") + 1])


# -- the workers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_worker(tiny_cross_encoder) -> Iterator:
    with worker_in_process(tiny_cross_encoder, auth_token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def tls_worker(tiny_cross_encoder, tmp_path_factory) -> Iterator[tuple[object, Path]]:
    """A worker with a certificate for localhost; ca.pem beside it, where the docs' command looks."""
    from support.credentials import write_self_signed_certificate

    folder = tmp_path_factory.mktemp("grpcurl-tls")
    cert, key = write_self_signed_certificate(folder)
    (folder / "ca.pem").write_bytes(cert.read_bytes())
    with worker_in_process(tiny_cross_encoder, tls_cert=str(cert), tls_key=str(key)) as server:
        yield server, folder


@pytest.fixture
def run(request, served, tmp_path) -> Callable[..., tuple[subprocess.CompletedProcess, Callable]]:
    """Runs a command as the docs show it, against the worker it is written for (or `worker`);
    returns its result and a factory of SDK clients for that same worker, the oracle."""
    grpcurl = dev_tool("grpcurl")

    def run_command(command: str, worker: str = "") -> tuple[subprocess.CompletedProcess, Callable]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSRANK_")}
        env["PATH"] = os.pathsep.join([os.path.dirname(grpcurl), env["PATH"]])
        cwd, client = tmp_path, {}
        worker = worker or ("tls" if "-cacert" in command else "token" if "authorization: Bearer" in command else "")
        if worker == "tls":
            server, cwd = request.getfixturevalue("tls_worker")
            port, client["ca_cert"] = server.port, (cwd / "ca.pem").read_bytes()
        elif worker == "token":
            port = request.getfixturevalue("token_worker").port
            env["CROSSRANK_AUTH_TOKEN"] = client["token"] = TOKEN
        else:
            port = served.port
        # The docs' `W=localhost:50051`, or the address itself; localhost is in the TLS certificate.
        env["W"] = f"localhost:{port}"
        result = subprocess.run(["bash", "-c", command.replace(ADDRESS, env["W"])], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=60)
        return result, functools.partial(CrossrankClient, env["W"], timeout=30, **client)

    return run_command


# -- what each command must print ------------------------------------------------------------------


def expected_ranking(sdk: Callable[[], CrossrankClient], message: dict):
    assert set(message) <= {"request_id", "query", "documents", "top_k", "return_documents", "raw_scores"}, message
    with sdk() as client:
        return client.rerank(message["query"], message["documents"], top_k=message.get("top_k", 0),
                             return_documents=message.get("return_documents", False),
                             raw_scores=message.get("raw_scores", False))


def check_ranking(out: dict, message: dict, sdk: Callable[[], CrossrankClient]) -> None:
    """grpcurl prints the proto's field names and leaves out zero values (index 0, a score of 0)."""
    expected = expected_ranking(sdk, message)
    assert out.get("request_id", "") == message.get("request_id", "")
    assert [r.get("index", 0) for r in out["results"]] == [r.index for r in expected.results]
    np.testing.assert_allclose([r.get("score", 0.0) for r in out["results"]], [r.score for r in expected.results],
                               rtol=1e-5)
    if message.get("return_documents"):
        assert [r["document"] for r in out["results"]] == [message["documents"][r.index] for r in expected.results]
    assert out["model"] == expected.model and int(out["usage"]["pairs"]) == len(message["documents"])


def check(command: str, stdout: str, sdk: Callable[[], CrossrankClient]) -> None:
    target = shlex.split(command)[-1]
    service = pb.DESCRIPTOR.services_by_name["Reranker"]
    if target == "list":
        reflection = {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
        assert set(stdout.split()) == {service.full_name, "grpc.health.v1.Health", *reflection}, stdout
    elif target == service.full_name:
        for method in service.methods:
            assert f"rpc {method.name} ( " in stdout, (method.name, stdout)
    elif target.startswith("crossrank.v1.") and "/" not in target:
        for field in pb.DESCRIPTOR.message_types_by_name[target.rsplit(".", 1)[1]].fields:
            assert f" {field.name} = {field.number};" in stdout, (field.name, stdout)
    elif target == f"{service.full_name}/Rerank":
        (message,), (out,) = request_messages(command), json_messages(stdout)
        check_ranking(out, message, sdk)
    elif target == f"{service.full_name}/RerankStream":
        messages, outs = request_messages(command), json_messages(stdout)
        by_id = {out["request_id"]: out for out in outs}
        assert sorted(by_id) == sorted(m["request_id"] for m in messages), stdout
        for message in messages:
            check_ranking(by_id[message["request_id"]], message, sdk)
    elif target == f"{service.full_name}/Info":
        (out,) = json_messages(stdout)
        with sdk() as client:
            info = client.info()
        assert (out["model"], out["device"], out["max_input_length"]) == \
            (info.model, info.device, info.max_input_length)
    elif target == "grpc.health.v1.Health/Check":
        assert json_messages(stdout) == [{"status": "SERVING"}]
    else:
        pytest.fail(f"no check for `{command}`: say here what it must print")


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}:{shlex.split(c)[-1]}" for d, c in COMMANDS])
def test_grpcurl_command_works_as_written(run, doc, command):
    result, sdk = run(command)
    assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
    check(command, result.stdout, sdk)


def test_the_docs_have_the_commands_the_test_expects():
    """The parser found them: a change in how the docs are written must not empty this test."""
    clients = [shlex.split(c)[-1] for d, c in COMMANDS if d == "docs/clients.md"]
    assert {"list", "crossrank.v1.Reranker/Rerank", "crossrank.v1.Reranker/RerankStream",
            "grpc.health.v1.Health/Check"} <= set(clients), clients
    assert any(d == "README.md" for d, _ in COMMANDS)
    assert "W=localhost:50051" in DOCS["docs/clients.md"]


def test_a_call_without_the_token_is_refused(run, token_worker):
    """The token command is not passing by accident: without the header the worker says no."""
    command = next(c for _, c in COMMANDS if "authorization: Bearer" in c)
    unauthenticated = command.replace('-H "authorization: Bearer $CROSSRANK_AUTH_TOKEN"', "")
    assert unauthenticated != command
    result, _ = run(unauthenticated, worker="token")
    assert result.returncode != 0 and "Code: Unauthenticated" in result.stderr, result.stderr


def test_the_error_the_docs_quote_is_what_grpcurl_prints(run):
    quoted = re.search(r"`Code: (\w+)  Message: ([^`]+)`", DOCS["docs/clients.md"])
    assert quoted, "docs/clients.md no longer quotes an error"
    no_documents = """'{"query": "q", "documents": []}'"""
    result, _ = run(f"grpcurl -plaintext -d {no_documents} {ADDRESS} crossrank.v1.Reranker/Rerank")
    assert result.returncode != 0
    assert f"Code: {quoted[1]}\n  Message: {quoted[2]}\n" in result.stderr, result.stderr
