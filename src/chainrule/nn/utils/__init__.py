"""``nn.utils``: gradient clipping (keep one bad batch from throwing the weights far away) and,
in :mod:`.rnn`, sequences of unequal lengths for the recurrent layers."""

from __future__ import annotations

import math

from ...backend import xp
from ...tensor import Tensor
from . import rnn  # noqa: F401 - nn.utils.rnn.pad_sequence, as torch.nn.utils.rnn


def _with_grad(parameters):
    if hasattr(parameters, "grad"):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def _power_sum(g, p: float) -> float:
    """sum |g|^p; for p = 2 one pass with no temporary (a BLAS dot of g with itself)."""
    if p == 2 and g.size:
        flat = g.reshape(-1)
        return float(xp.dot(flat, flat))
    return float(xp.sum(xp.abs(g) ** p))


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    total = ||(g_1, g_2, ...)||_p;  g <- g * min(1, max_norm / (total + 1e-6)).
    Returns total (a one-element tensor, as PyTorch's).
    """
    grads = [p.grad._data for p in _with_grad(parameters)]
    if not grads:
        return Tensor._make(xp.asarray(0.0), False)
    if norm_type == math.inf:
        total = max(float(xp.abs(g).max()) for g in grads)
    else:
        total = sum(_power_sum(g, norm_type) for g in grads) ** (1 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total gradient norm is {total}: some gradient is NaN or infinite")
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= scale
    return Tensor._make(xp.asarray(total, dtype=grads[0].dtype), False)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clip every gradient element to [-clip_value, clip_value] in place."""
    for p in _with_grad(parameters):
        xp.clip(p.grad._data, -clip_value, clip_value, out=p.grad._data)
