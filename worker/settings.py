"""The worker's one settings object: every field is a `crossrank serve` flag and a CROSSRANK_* variable.

Flags win over environment variables, which win over the defaults below; `validate()`
runs once at start-up so a bad value stops the process with a message, not a traceback.
Built on the shared `Settings` (crossrank.common.settings): its flags come from the same generator as
every other command's.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from crossrank.common.net import DEFAULT_PORT
from crossrank.common.settings import Settings, SettingsError, setting

DEFAULT_MODEL = "BAAI/bge-reranker-v2-m3"
DEFAULT_EMBED_MODEL = "BAAI/bge-small-zh-v1.5"
DTYPES = ("auto", "fp32", "fp16", "bf16")
BACKENDS = ("auto", "torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
# Backends whose scores rank unlike fp32's on the trained model (docs/benchmarks.md): Spearman below 0.99 against
# fp32, or NDCG@10 on agentset-msmarco through `crossrank eval` more than 0.005 below fp32's. Each with what was
# measured: marked in --help, never picked by auto.
LOSSY_BACKENDS = {"onnx-int8": "Spearman 0.956, NDCG@10 -0.021", "openvino-int8": "NDCG@10 -0.0076"}
TORCH_GRAPHS = ("auto", "eager", "traced")
OPENVINO_HINTS = ("throughput", "latency")


def tls_problems(cert: str, key: str) -> list[str]:
    """What is wrong with a certificate and key pair, naming the file; gRPC would only say it cannot bind."""
    for name, path, marker in (("tls_cert", cert, "CERTIFICATE-----"), ("tls_key", key, "PRIVATE KEY-----")):
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                pem = f.read()
        except OSError as exc:
            return [f"{name} {path} cannot be read: {exc.strerror}"]
        if marker not in pem:
            return [f"{name} {path} holds no PEM {marker.rstrip('-').lower()}"]
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            return [f"tls_key {key} is not the private key of the certificate in tls_cert {cert}"]
        return [f"tls_cert {cert} with tls_key {key} cannot be loaded: {exc.reason or exc}"]
    return []


@dataclass(frozen=True)
class WorkerSettings(Settings):
    host: str = setting("0.0.0.0", "Address to bind.")
    port: int = setting(DEFAULT_PORT, "gRPC port; 0 binds a free one (logged at start).")
    model: str = setting(DEFAULT_MODEL, "Cross-encoder: Hugging Face id or local path; a sequence classifier or "
                         "a causal-LM reranker (docs/models.md).")
    embed_model: str = setting(
        DEFAULT_EMBED_MODEL, "Bi-encoder behind Embed (id or path); 'none' serves no Embed and saves its memory.")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N. One process serves exactly one device.")
    dtype: str = setting(
        "auto", "auto (fp16 on a GPU; bf16 on a CPU with native bf16, AMX or avx512_bf16; else fp32), fp32, "
        "fp16 or bf16. Lower is faster, a little less exact: `crossrank bench --accuracy` reports the cost; "
        "`crossrank info` shows what was picked and why.", choices=DTYPES)
    backend: str = setting(
        "auto", "auto (by the CPU's class, AMX, avx512_bf16, VNNI or AVX2; torch on a GPU), torch, onnx / onnx-int8 "
        "through ONNX Runtime, openvino / openvino-int8 through OpenVINO (CPU only). Lossy, ranking unlike fp32: "
        + ", ".join(f"{b} ({v})" for b, v in LOSSY_BACKENDS.items()) + " against fp32 (docs/benchmarks.md).",
        choices=BACKENDS)
    default_prompt: str = setting(
        "", "Which of the model's saved prompts (instructions) a request without `instruction` gets; empty = "
        "the model's own default_prompt_name, if any.")
    max_length: int = setting(0, "Tokens per (query, document) input; 0 = the model's own limit.")
    max_query_share: float = setting(
        0.25, "Largest share of max_length the query may take, so a long query cannot crowd out the document.")
    window_tokens: int = setting(400, "Window size in document tokens for long_document=WINDOW.")
    window_stride: int = setting(200, "Step between window starts, in document tokens.")
    max_batch_tokens: int = setting(
        0, "Padded tokens per forward pass; 0 = auto: 16384 on a GPU, 4096 on a CPU. Larger fills a GPU better "
        "but makes every pair in the batch wait for the slowest; on a CPU small batches were faster (see "
        "docs/benchmarks.md).")
    max_batch_pairs: int = setting(0, "Inputs per forward pass at most; 0 = auto: 256 on a GPU, 32 on a CPU.")
    max_queue_pairs: int = setting(
        20000, "Inputs waiting at most; beyond it new work gets RESOURCE_EXHAUSTED at once instead of queueing.")
    sort_window: int = setting(
        1024, "At most this many pending inputs, of the oldest requests, are sorted by length to form a batch "
        "(and at most twice the batch's pairs: a wider window mixes more requests into each batch).")
    tokenizer_workers: int = setting(
        0, "Threads tokenizing requests in parallel (the Rust tokenizer runs without the GIL); 0 = the "
        "available cores minus one, at least 1.")
    cpu_streams: int = setting(
        0, "On a CPU with --backend torch, forward passes in flight at once, each on cores / N threads (a pass that "
        "is the worker's only work runs on all of them); 0 = auto: 2 where there are 2 cores or more. Parallel "
        "across batches spends less on OpenMP's fork and join than one pass on every core.")
    compute_niceness: int = setting(
        10, "On a CPU, how far the threads that tokenize and run the model stand back (their nice value, raised) "
        "for the threads that take, refuse and answer requests, so a refusal need not wait for a batch; 0 = the "
        "same priority. No effect on a GPU.")
    frontends: str = setting(
        "0", "Frontend processes serving gRPC and HTTP on the same ports (tokenizing, admitting, ranking) beside "
        "one engine-core process that owns the device and runs the batches; 0 = everything in one process; auto "
        "= by the cores and the device (docs/deployment.md).")
    max_documents_per_request: int = setting(1000, "Documents (or pairs, or texts) per request at most.")
    max_characters_per_request: int = setting(2_000_000, "Characters of text per request at most.")
    max_message_bytes: int = setting(64 * 1024 * 1024, "Largest gRPC message accepted or sent.")
    grpc_threads: int = setting(
        64, "Threads for health and reflection; Rerank, Score and Embed need none: their calls wait on the event "
        "loop, admitted or refused as they arrive.")
    grace_seconds: float = setting(10.0, "Seconds a stopping server lets in-flight calls finish.")
    metrics_port: int = setting(0, "Serve Prometheus metrics over HTTP on this port; 0 turns it off.")
    http_port: int = setting(
        0, "Serve the HTTP gateway (Cohere, Jina, TEI, Infinity and vLLM APIs: docs/clients.md) on this port, "
        "beside gRPC and sharing its batcher; 0 turns it off, -1 binds a free one (logged at start).")
    http_max_body_bytes: int = setting(
        2 * 1024 * 1024, "Largest HTTP request body; a larger one gets 413 before it is read whole (TEI's "
        "default is the same 2 MB).")
    served_model_name: str = setting(
        "", "Model name the HTTP gateway reports in its responses and in GET /v1/models (vLLM's flag); empty = "
        "--model.")
    strict_model_name: bool = setting(
        False, "Answer 404 to an HTTP request whose `model` is not the served name; without it any name is served.")
    auth_token: str = setting("", "Require `authorization: Bearer <token>` on Reranker calls; empty = open.",
                              secret=True)
    tls_cert: str = setting("", "PEM server certificate; with tls_key, serves TLS.")
    tls_key: str = setting("", "PEM private key of tls_cert.")
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR.")
    json_logs: bool = setting(False, "One JSON object per log line; request lines carry the request_id.",
                              off_flag="--text-logs")
    onnx_cache: str = setting("~/.cache/crossrank/onnx", "Folder of the ONNX exports (--backend onnx or "
                              "onnx-int8), one per model; made on first use.")
    openvino_cache: str = setting("~/.cache/crossrank/openvino", "Folder of the OpenVINO exports and compiled "
                                  "models (--backend openvino or openvino-int8), one per model; made on first use.")
    openvino_hint: str = setting(
        "throughput", "OpenVINO's performance hint: throughput runs several batches at once, each on a share of "
        "the cores; latency runs one batch at a time on all of them.", choices=OPENVINO_HINTS)
    torch_graph: str = setting(
        "auto", "How --backend torch runs a sequence classifier: eager, module by module in Python; traced once at "
        "start (TorchScript) and checked against eager there, which runs without Python or the GIL per module; "
        "auto = traced on a CPU where the check holds, else eager (the log and `crossrank info` say why).",
        choices=TORCH_GRAPHS)

    @property
    def serves_embeddings(self) -> bool:
        return self.embed_model.strip().lower() not in ("", "none", "off")

    def validate(self) -> WorkerSettings:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port {self.port} is not between 0 and 65535")
        if not -1 <= self.http_port <= 65535:
            problems.append(f"http_port {self.http_port} is not -1 (any free port), 0 (off) or a port number")
        if self.dtype not in DTYPES:
            problems.append(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.backend not in BACKENDS:
            problems.append(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            problems.append(f"device {self.device!r} is not auto, cpu, cuda or cuda:N")
        if not 0 < self.max_query_share < 1:
            problems.append(f"max_query_share {self.max_query_share} must be between 0 and 1")
        if self.window_tokens < 8 or not 0 < self.window_stride <= self.window_tokens:
            problems.append("window_tokens must be >= 8 and 0 < window_stride <= window_tokens")
        if self.frontends != "auto" and not self.frontends.isdigit():
            problems.append(f"frontends {self.frontends!r} is not a number of processes (0 for one process) or auto")
        for name in ("max_batch_tokens", "max_batch_pairs", "tokenizer_workers", "cpu_streams"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 (auto) or positive")
        for name in ("max_queue_pairs", "sort_window",
                     "max_documents_per_request", "max_characters_per_request", "grpc_threads",
                     "http_max_body_bytes"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if not 0 <= self.compute_niceness <= 19:
            problems.append(f"compute_niceness {self.compute_niceness} must be between 0 and 19")
        if self.max_length < 0:
            problems.append("max_length must be 0 (the model's limit) or positive")
        if self.max_length and 0 < self.max_batch_tokens < self.max_length:
            problems.append(f"max_batch_tokens {self.max_batch_tokens} is below max_length {self.max_length}")
        if bool(self.tls_cert) != bool(self.tls_key):
            problems.append("tls_cert and tls_key go together: give both or neither")
        elif self.tls_cert:
            problems += tls_problems(self.tls_cert, self.tls_key)
        if problems:
            raise SettingsError("invalid worker settings: " + "; ".join(problems))
        return super().validate()

    @property
    def frontend_count(self) -> int:
        """Frontend processes (0: one process); `auto` is resolved by `crossrank serve` before anything reads it."""
        return 0 if self.frontends == "auto" else int(self.frontends)

    def batch_limits(self, on_gpu: bool) -> tuple[int, int]:
        """(max_batch_tokens, max_batch_pairs), with 0 resolved for the device."""
        tokens = self.max_batch_tokens or (16384 if on_gpu else 4096)
        pairs = self.max_batch_pairs or (256 if on_gpu else 32)
        return tokens, pairs
