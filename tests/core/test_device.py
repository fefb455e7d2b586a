"""The precision a worker picks, and the reason it gives."""


def test_dtype_auto_says_what_it_picked_and_why():
    import torch

    from crossrank.worker.engine.device import native_bf16, resolve_dtype

    assert resolve_dtype("fp32", torch.device("cpu")) == (torch.float32, "--dtype fp32")
    assert resolve_dtype("auto", torch.device("cuda")) == (torch.float16, "auto: fp16 on a GPU")
    dtype, reason = resolve_dtype("auto", torch.device("cpu"))
    if native_bf16():
        assert dtype == torch.bfloat16 and native_bf16() in reason
    else:
        assert dtype == torch.float32 and "no native bf16" in reason
