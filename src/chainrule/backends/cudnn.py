"""``torch.backends.cudnn``: no cuDNN here; the flags are accepted and have no effect."""

enabled = True  # as PyTorch answers on a build without cuDNN
deterministic = False
benchmark = False
allow_tf32 = True  # PyTorch's default; nothing here computes in TF32


def is_available() -> bool:
    return False


def version() -> None:
    """No cuDNN: None, as PyTorch answers on a build without it."""
    return None
