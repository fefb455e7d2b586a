"""The precision a worker picks, the reason it gives, and the GPU attention kernel it allows."""

import pytest
import torch


def test_dtype_auto_says_what_it_picked_and_why():
    from crossrank.worker.engine.device import native_bf16, resolve_dtype

    dtype, reason = resolve_dtype("fp32", torch.device("cpu"))
    assert dtype == torch.float32 and reason.startswith("--dtype fp32 (auto: ")  # asked, and what auto would pick
    assert resolve_dtype("auto", torch.device("cuda")) == (torch.float16, "auto: fp16 on a GPU")
    dtype, reason = resolve_dtype("auto", torch.device("cpu"))
    if native_bf16():
        assert dtype == torch.bfloat16 and native_bf16() in reason
    else:
        assert dtype == torch.float32 and "no native bf16" in reason


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_runtime_keeps_attention_off_cudnn(tiny_cross_encoder):
    """cuDNN attention builds a graph per batch shape; the worker's shapes seldom repeat (runtime.py)."""
    from crossrank.worker.engine.device import place
    from crossrank.worker.engine.runtime import CrossEncoderRuntime

    torch.backends.cuda.enable_cudnn_sdp(True)
    CrossEncoderRuntime(str(tiny_cross_encoder), place("cuda", "fp16"))
    assert not torch.backends.cuda.cudnn_sdp_enabled()
