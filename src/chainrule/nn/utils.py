"""Gradient clipping: keep one bad batch from throwing the weights far away."""

from __future__ import annotations

import math

from ..backend import xp


def _with_grad(parameters):
    if hasattr(parameters, "grad"):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    total = ||(g_1, g_2, ...)||_p;  g <- g * min(1, max_norm / (total + 1e-6)). Returns total.
    """
    params = _with_grad(parameters)
    if not params:
        return 0.0
    if norm_type == math.inf:
        total = max(float(xp.abs(p.grad).max()) for p in params)
    else:
        total = sum(float(xp.sum(xp.abs(p.grad) ** norm_type)) for p in params) ** (1 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total gradient norm is {total}: some gradient is NaN or infinite")
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for p in params:
            p.grad *= scale
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clip every gradient element to [-clip_value, clip_value] in place."""
    for p in _with_grad(parameters):
        xp.clip(p.grad, -clip_value, clip_value, out=p.grad)
