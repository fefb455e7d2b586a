"""Server reflection under both names (grpc.reflection.v1 and v1alpha), and docs/clients.md's
reflection check from Python, run as written (the venv's python, the worker's address)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2
from support.paths import ROOT

from crossrank.protos import SERVICE_NAME, pb

REFLECTION = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


def reflect(address: str, service: str, *requests: reflection_pb2.ServerReflectionRequest) -> list:
    """One ServerReflectionInfo stream; v1 and v1alpha messages are the same on the wire."""
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(f"/{service}/ServerReflectionInfo",
                                     request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                     response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        return list(call(iter(requests), timeout=30))


def files(response: reflection_pb2.ServerReflectionResponse) -> list[descriptor_pb2.FileDescriptorProto]:
    found = response.file_descriptor_response.file_descriptor_proto
    return [descriptor_pb2.FileDescriptorProto.FromString(f) for f in found]


@pytest.mark.parametrize("service", REFLECTION)
def test_both_reflection_versions_list_and_describe_the_services(worker, service):
    listed, described, v1 = reflect(
        f"127.0.0.1:{worker.port}", service,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=REFLECTION[0]),
    )
    names = {s.name for s in listed.list_services_response.service}
    assert names == {SERVICE_NAME, "grpc.health.v1.Health", *REFLECTION}
    reranker = files(described)[0]
    assert reranker.name == pb.DESCRIPTOR.name
    methods = pb.DESCRIPTOR.services_by_name["Reranker"].methods_by_name
    assert [m.name for m in reranker.service[0].method] == list(methods)
    (v1_file,) = files(v1)
    assert (v1_file.name, v1_file.package) == ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1")
    assert v1_file.service[0].method[0].input_type == ".grpc.reflection.v1.ServerReflectionRequest"


def test_an_unknown_symbol_is_an_error_not_a_crash(worker):
    (response,) = reflect(f"127.0.0.1:{worker.port}", REFLECTION[0],
                          reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Service"))
    assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_the_docs_reflection_check_runs_as_written(worker):
    guide = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", guide, flags=re.S) if "ProtoReflection" in b]
    assert block.startswith(".venv/bin/python - localhost:50051 <<'EOF'\n"), block
    venv = f"{Path(sys.executable).parent}/"  # .venv/bin/ in the repository's own venv
    script = block.replace(".venv/bin/", venv, 1).replace("localhost:50051", f"127.0.0.1:{worker.port}", 1)
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for method in pb.DESCRIPTOR.services_by_name["Reranker"].methods:
        assert f"{method.full_name}({method.input_type.name}) -> {method.output_type.name}" in lines
    assert "grpc.health.v1.Health.Check(HealthCheckRequest) -> HealthCheckResponse" in lines
    assert "crossrank.v1.Reranker.Rerank(RerankRequest) -> RerankResponse" in lines  # the docs quote it
