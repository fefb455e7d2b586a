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


def resolve_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested != "auto":
        return _DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def place(device: str, dtype: str) -> Placement:
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        name = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    else:
        name = f"cpu, {torch.get_num_threads()} threads"
    return Placement(dev, dt, name)
