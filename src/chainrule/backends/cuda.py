"""``torch.backends.cuda``: no CUDA here; the matmul flags scripts set (nanoGPT's
``torch.backends.cuda.matmul.allow_tf32 = True``) are accepted and have no effect."""


class _Matmul:
    """``torch.backends.cuda.matmul``: PyTorch's defaults; CPU matmuls here are full float32."""

    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


matmul = _Matmul()


def is_built() -> bool:
    return False
