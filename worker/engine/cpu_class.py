"""What serves best on this CPU: its class, from its instruction-set flags, and the rule for each class.

`choose` is a pure function of the flags (named as in /proc/cpuinfo and `lscpu`), so the rule is
tested over flag sets, not only on the machine the tests happen to run on. `cpu_flags` reads
them through torch's cpuinfo, which also checks that the OS enables them (AMX needs that).

The rule keeps the choice measured so far: torch everywhere, bf16 where the CPU runs it
natively (docs/benchmarks.md). Change a row of RULE when `crossrank bench` on a CPU of that
class measures a faster lossless backend; a lossy backend is never picked, whatever a row says.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from crossrank.worker.settings import LOSSY_BACKENDS

# Best first: a CPU's class is the first one whose flag it has.
CLASSES = (("AMX", "amx_tile"), ("avx512_bf16", "avx512_bf16"), ("VNNI", "avx512_vnni"), ("AVX2", "avx2"))
BASELINE = "baseline"

# Class -> (backend, dtype, why that backend).
RULE = {
    "AMX": ("torch", "bf16", "torch bf16 measured fastest on AMX (docs/benchmarks.md)"),
    "avx512_bf16": ("torch", "bf16", "torch bf16 measured fastest with native bf16 (docs/benchmarks.md)"),
    "VNNI": ("torch", "fp32", "no lossless int8 backend measured faster yet"),
    "AVX2": ("torch", "fp32", "no other backend measured faster in the worker yet"),
    BASELINE: ("torch", "fp32", "the plain fp32 path"),
}
NATIVE_BF16 = ("AMX", "avx512_bf16")

# The module each backend needs beyond torch.
_NEEDS = {"onnx": "onnxruntime", "onnx-int8": "onnxruntime", "openvino": "openvino", "openvino-int8": "nncf"}


@dataclass(frozen=True)
class Choice:
    cpu_class: str
    backend: str
    dtype: str
    reason: str  # what was asked, what was picked and why, in one line (Info's dtype_reason)


def cpu_class(flags: Collection[str]) -> str:
    return next((name for name, flag in CLASSES if flag in flags), BASELINE)


def choose(
    flags: Collection[str],
    backend: str = "auto",
    dtype: str = "auto",
    installed: Collection[str] = ("torch",),
    rule: Mapping[str, tuple[str, str, str]] = RULE,
) -> Choice:
    """The backend and dtype to serve at on a CPU with `flags`, given what was asked and what is installed."""
    cls = cpu_class(flags)
    rule_backend, rule_dtype, why = rule[cls]
    if rule_backend in LOSSY_BACKENDS or rule_backend not in installed:
        why = f"{rule_backend} is {'lossy' if rule_backend in LOSSY_BACKENDS else 'not installed'}"
        rule_backend = "torch"
    native = f"native bf16 ({cls})" if cls in NATIVE_BF16 else "no native bf16 (AMX or avx512_bf16)"
    auto_dtype = f"{rule_dtype} on CPU class {cls}, {native}"
    auto_backend = f"{rule_backend} on CPU class {cls}, {why}"
    # What was asked first; an explicit choice still says what auto would have picked on this CPU, and why.
    reasons = [f"auto: {auto_dtype}" if dtype == "auto" else f"--dtype {dtype} (auto: {auto_dtype})"]
    reasons.append(
        f"--backend auto: {auto_backend}" if backend == "auto" else f"--backend {backend} (auto: {auto_backend})"
    )
    return Choice(
        cls,
        rule_backend if backend == "auto" else backend,
        rule_dtype if dtype == "auto" else dtype,
        "; ".join(reasons),
    )


def cpu_flags() -> frozenset[str]:
    """This CPU's flags that the rule reads, as the OS lets programs use them."""
    import torch

    checks = {
        "amx_tile": torch.cpu._is_amx_tile_supported,
        "avx512_bf16": torch.cpu._is_avx512_bf16_supported,
        "avx512_vnni": torch.cpu._is_vnni_supported,
        "avx2": torch.cpu._is_avx2_supported,
    }
    return frozenset(flag for flag, check in checks.items() if check())


def installed_backends() -> frozenset[str]:
    return frozenset(["torch"] + [b for b, module in _NEEDS.items() if importlib.util.find_spec(module)])
