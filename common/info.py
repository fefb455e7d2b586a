"""What a worker serves and its limits: the Info RPC's fields, as the worker fills them and the SDK returns them.

One type for both sides (torch-free), so a field added to the contract is added once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    model: str
    embed_model: str
    device: str
    dtype: str
    backend: str
    max_input_length: int
    max_batch_tokens: int
    max_batch_pairs: int
    max_queue_pairs: int
    max_documents_per_request: int
    max_characters_per_request: int
    max_message_bytes: int
    embed_dimensions: int
    version: str
    dtype_reason: str = ""  # why this precision (and backend) was picked
    tokenizer_workers: int = 0
    state: str = "ready"  # "loading" until the model is warm, "failed" when loading failed
    loading_seconds: float = 0.0
    load_error: str = ""
