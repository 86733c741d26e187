"""``torch.backends.cuda``: no CUDA here."""


def is_built() -> bool:
    return False
