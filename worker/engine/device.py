"""Pick the one device a worker serves and the precision it runs at."""

from __future__ import annotations

from dataclasses import dataclass

import torch

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    name: str  # human description: GPU name and memory, or "cpu"
    dtype_reason: str = "asked for"  # why this precision: shown by Info and `crossrank info`

    @property
    def dtype_name(self) -> str:
        return {v: k for k, v in _DTYPES.items()}[self.dtype]


def resolve_device(requested: str) -> torch.device:
    """auto takes the first GPU when there is one; an explicit GPU that isn't there is an error."""
    if requested == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"--device {requested} asked for a GPU but torch sees none "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). "
                "Use --device cpu, or install a CUDA build of torch."
            )
        index = device.index if device.index is not None else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise RuntimeError(f"--device {requested}: only {count} GPU(s) visible (cuda:0..cuda:{count - 1})")
        device = torch.device("cuda", index)
    return device


def native_bf16() -> str:
    """The CPU feature that runs bf16 matmuls natively (AMX, then avx512_bf16), or "" when none does."""
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "avx512_bf16"
    return ""


def resolve_dtype(requested: str, device: torch.device) -> tuple[torch.dtype, str]:
    """The precision to serve at, and a short reason for it."""
    if requested != "auto":
        return _DTYPES[requested], f"--dtype {requested}"
    if device.type == "cuda":
        return torch.float16, "auto: fp16 on a GPU"
    feature = native_bf16()
    if feature:
        return torch.bfloat16, f"auto: this CPU has native bf16 ({feature})"
    return torch.float32, "auto: this CPU has no native bf16 (AMX or avx512_bf16)"


def place(device: str, dtype: str) -> Placement:
    dev = resolve_device(device)
    dt, reason = resolve_dtype(dtype, dev)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        name = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    else:
        name = f"cpu, {torch.get_num_threads()} threads"
    return Placement(dev, dt, name, reason)
