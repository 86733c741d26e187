"""Activation functions and the softmax family as functions (``cr.relu``, ``F.softmax``, ...)."""

from __future__ import annotations

from ..ops import activations as act
from ..tensor import Tensor, _raw
from .math import astype


def relu(input, inplace: bool = False) -> Tensor:
    """max(input, 0)."""
    return input.relu_() if inplace else act.ReLU.apply(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """input if input > 0 else negative_slope * input."""
    result = act.LeakyReLU.apply(input, negative_slope=negative_slope)
    return input.copy_(result) if inplace else result


def sigmoid(input) -> Tensor:
    """1 / (1 + e^-input), stable for large |input|."""
    return act.Sigmoid.apply(input)


def tanh(input) -> Tensor:
    """The hyperbolic tangent."""
    return act.Tanh.apply(input)


def gelu(input, approximate: str = "none") -> Tensor:
    """x Phi(x) with the exact erf (``approximate='tanh'`` for the tanh formula)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return act.GELU.apply(input, approximate=approximate)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, linear above ``threshold`` as in PyTorch."""
    return act.Softplus.apply(input, beta=beta, threshold=threshold)


def softmax(input, dim=-1, dtype=None, *, axis=None) -> Tensor:
    """e^x / sum e^x along ``dim`` (default: the last)."""
    if dtype is not None:
        input = astype(input, dtype)
    return act.Softmax.apply(input, axis=one_axis(input, dim if axis is None else axis))


def log_softmax(input, dim=-1, dtype=None, *, axis=None) -> Tensor:
    """x - logsumexp(x) along ``dim``: log-probabilities, stable for large |x|."""
    if dtype is not None:
        input = astype(input, dtype)
    return act.LogSoftmax.apply(input, axis=one_axis(input, dim if axis is None else axis))


def one_axis(x, axis) -> int:
    """``axis`` checked to be one valid axis of ``x``."""
    ndim = _raw(x).ndim
    if not isinstance(axis, int) or not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"axis must be an int in [-{ndim}, {ndim}), got {axis!r}")
    return axis
