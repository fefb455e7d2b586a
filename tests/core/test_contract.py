"""The gRPC contract: generated code is fresh, and names match DESIGN.md."""

import subprocess
import sys

from support.paths import ROOT

from crossrank.protos import SERVICE_NAME, pb


def test_generated_code_is_fresh():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_service_and_methods():
    assert SERVICE_NAME == "crossrank.v1.Reranker"
    service = pb.DESCRIPTOR.services_by_name["Reranker"]
    methods = {m.name: m for m in service.methods}
    assert set(methods) == {"Rerank", "RerankStream", "Score", "Embed", "Info"}
    stream = methods["RerankStream"]
    assert stream.client_streaming and stream.server_streaming
    assert not methods["Rerank"].client_streaming


def test_rerank_request_fields():
    fields = set(pb.RerankRequest.DESCRIPTOR.fields_by_name)
    assert {"request_id", "query", "documents", "top_k", "return_documents", "raw_scores", "truncate",
            "long_document"} <= fields
    assert {"index", "score", "document"} == set(pb.RankedDocument.DESCRIPTOR.fields_by_name)
    assert {"request_id", "results", "model", "usage"} <= set(pb.RerankResponse.DESCRIPTOR.fields_by_name)
    assert {"pairs", "tokens", "queue_ms", "inference_ms"} == set(pb.Usage.DESCRIPTOR.fields_by_name)


def test_info_reports_limits():
    fields = set(pb.InfoResponse.DESCRIPTOR.fields_by_name)
    assert {"model", "device", "dtype", "max_input_length", "max_batch_tokens", "max_documents_per_request",
            "max_message_bytes", "version"} <= fields
