"""``cr.nn.functional`` (imported as ``F``): layers and losses as plain functions."""

from __future__ import annotations

from ..backend import rng, xp
from ..functional import (  # noqa: F401 - re-exported for F.relu, F.softmax, ...
    flatten,
    gelu,
    leaky_relu,
    linear,
    log_softmax,
    logsumexp,
    mean,
    relu,
    sigmoid,
    softmax,
    softplus,
    sqrt,
    tanh,
    var,
)
from ..ops.arithmetic import Mul
from ..tensor import Tensor
from .losses import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
)


def dropout(x, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each value with probability p, scale the rest by 1/(1-p)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = rng().random(x.shape, dtype=xp.float64) >= p
    return Mul.apply(x, keep.astype(x.dtype) * x.dtype.type(1 / (1 - p)))


def batch_norm(
    x,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1) over the batch and any spatial axes, then scale and shift.

    y = (x - mean) / sqrt(var + eps) * weight + bias. In training the batch statistics are used
    (biased variance) and the running ones updated in place with the unbiased variance; otherwise
    the running statistics are used.
    """
    axes = (0, *range(2, x.ndim))
    channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        batch_mean = mean(x, axis=axes, keepdims=True)
        batch_var = var(x, axis=axes, keepdims=True)
        if running_mean is not None:
            count = x.size // x.shape[1]
            running_mean *= 1 - momentum
            running_mean += momentum * batch_mean.data.reshape(-1)
            running_var *= 1 - momentum
            running_var += momentum * batch_var.data.reshape(-1) * (count / max(count - 1, 1))
        normalized = (x - batch_mean) / sqrt(batch_var + eps)
    else:
        centre = running_mean.reshape(channel_shape)
        scale = 1 / xp.sqrt(running_var.reshape(channel_shape) + eps)
        normalized = (x - centre) * scale
    if weight is not None:
        normalized = normalized * weight.reshape(channel_shape)
    if bias is not None:
        normalized = normalized + bias.reshape(channel_shape)
    return normalized


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise each example over its last ``len(normalized_shape)`` axes, then scale and shift."""
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    centred = x - mean(x, axis=axes, keepdims=True)
    normalized = centred / sqrt(mean(centred * centred, axis=axes, keepdims=True) + eps)
    if weight is not None:
        normalized = normalized * weight
    if bias is not None:
        normalized = normalized + bias
    return normalized
