"""Pick the one device a worker serves and the precision it runs at."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from crossrank.worker.engine.cpu_class import NATIVE_BF16, choose, cpu_class, cpu_flags, installed_backends

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    name: str  # human description: GPU name and memory, or "cpu"
    dtype_reason: str = "asked for"  # why this precision (and backend): shown by Info and `crossrank info`
    backend: str = "torch"

    @classmethod
    def of_info(cls, info: dict) -> Placement:
        """The placement the engine core reports (its `WorkerInfo` fields), as a frontend knows it."""
        return cls(torch.device(info["device"]), _DTYPES[info["dtype"]], info["device"], info["dtype_reason"],
                   info["backend"])

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
    cls = cpu_class(cpu_flags())
    return cls if cls in NATIVE_BF16 else ""


def resolve(dtype: str, device: torch.device, backend: str = "torch") -> tuple[torch.dtype, str, str]:
    """The precision and backend to serve with, and a short reason for them (on a CPU, by its class)."""
    if device.type == "cuda":
        backend = "torch" if backend == "auto" else backend
        if dtype != "auto":
            return _DTYPES[dtype], f"--dtype {dtype}", backend
        return torch.float16, "auto: fp16 on a GPU", backend
    choice = choose(cpu_flags(), backend, dtype, installed_backends())
    return _DTYPES[choice.dtype], choice.reason, choice.backend


def resolve_dtype(requested: str, device: torch.device) -> tuple[torch.dtype, str]:
    """The precision to serve at through torch, and a short reason for it."""
    dtype, reason, _ = resolve(requested, device)
    return dtype, reason


def place(device: str, dtype: str, backend: str = "torch") -> Placement:
    dev = resolve_device(device)
    dt, reason, backend = resolve(dtype, dev, backend)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        name = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    else:
        name = f"cpu, {torch.get_num_threads()} threads"
    return Placement(dev, dt, name, reason, backend)
