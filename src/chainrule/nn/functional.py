"""``cr.nn.functional`` (imported as ``F``): layers and losses as plain functions."""

from __future__ import annotations

import math

from .. import api
from ..api import (  # noqa: F401 - re-exported for F.relu, F.softmax, ...
    clamp,
    flatten,
    gelu,
    leaky_relu,
    linear,
    log_softmax,
    logsumexp,
    mean,
    norm,
    relu,
    reshape,
    sigmoid,
    softmax,
    softplus,
    sqrt,
    tanh,
)
from ..backend import rng, xp
from ..ops import batchnorm_fast, conv, conv_fast, pool_fast
from ..ops.arithmetic import Mul
from ..ops.normalization import BatchNorm
from ..tensor import Tensor, as_array
from .embedding import embedding  # noqa: F401 - F.embedding
from .losses import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """Class indices (int64, any shape) -> one-hot rows: shape (*, num_classes), int64.

    ``num_classes=-1`` takes the largest index + 1."""
    labels = xp.asarray(as_array(tensor))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot is only applicable to index tensors, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise RuntimeError("one_hot: class values must be non-negative")
    if num_classes == -1:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise RuntimeError(
            f"one_hot: class values must be smaller than num_classes={num_classes}, "
            f"got {int(labels.max())}"
        )
    return Tensor._make((labels[..., None] == xp.arange(num_classes)).astype(xp.int64), False)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p, eps) along ``dim``: vectors of length 1."""
    return input / clamp(norm(input, p, dim, keepdim=True), min=eps)


def pad(input, pad, mode: str = "constant", value=None) -> Tensor:
    """PyTorch's padding list, from the last axis backwards: ``(left, right)`` pads the last axis,
    ``(left, right, top, bottom)`` the last two, ... (constant mode; ``value`` default 0)."""
    if mode != "constant":
        raise NotImplementedError(f"pad mode {mode!r}: chainrule pads with a constant only")
    pad = list(pad)
    ndim = input.ndim
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(f"pad {tuple(pad)} must give (before, after) pairs for <= {ndim} axes")
    widths = [(0, 0)] * (ndim - len(pad) // 2) + [
        (pad[2 * k], pad[2 * k + 1]) for k in reversed(range(len(pad) // 2))
    ]
    if any(w < 0 for pair in widths for w in pair):
        raise NotImplementedError("pad: negative padding (cropping) is not supported")
    return api.pad(input, widths, value=0.0 if value is None else value)


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
    (a fused op, :class:`~chainrule.ops.normalization.BatchNorm`) and the running ones updated in
    place with the unbiased variance; otherwise the running statistics are used.
    """
    channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        stats: dict = {}
        # images take the fast channels-last op (tested equal to the fused reference BatchNorm)
        op = batchnorm_fast.ChannelsLastBatchNorm2d if x.ndim == 4 else BatchNorm
        y = op.apply(x, weight, bias, eps=eps, stats_out=stats)
        if running_mean is not None:
            mean, var = as_array(running_mean), as_array(running_var)
            batch_mean, batch_var = stats["mean"], stats["var"]
            count = math.prod(x.shape) // x.shape[1]
            mean *= 1 - momentum
            mean += momentum * batch_mean
            var *= 1 - momentum
            var += momentum * batch_var * (count / max(count - 1, 1))
        return y
    running_mean, running_var = as_array(running_mean), as_array(running_var)
    scale = 1 / xp.sqrt(running_var.reshape(channel_shape) + eps)
    normalized = (x - running_mean.reshape(channel_shape)) * scale.astype(x.dtype)
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


# -- images (NCHW) -------------------------------------------------------------------------------


def pair(value, name: str = "argument") -> tuple:
    """An int or a pair of ints as a pair (height, width)."""
    if isinstance(value, int):
        return (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
    ):
        return tuple(value)
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def conv_padding(padding, kernel, dilation) -> tuple:
    """((top, bottom), (left, right)) from an int, a pair, or 'same' / 'valid' (as PyTorch)."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    ph, pw = pair(padding, "padding")
    return ((ph, ph), (pw, pw))


def _check_image(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name} expects images of shape (N, C, H, W), got {tuple(x.shape)}")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution of NCHW images with filters (out_channels, in_channels/groups, kh, kw)."""
    _check_image("conv2d", x)
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    kernel = tuple(weight.shape[2:])
    pads = conv_padding(padding, kernel, dilation)
    if padding == "same" and stride != (1, 1):
        raise ValueError("conv2d padding='same' needs stride 1")
    out_channels, c_per_group = weight.shape[:2]
    if x.shape[1] != c_per_group * groups or out_channels % groups:
        raise ValueError(
            f"conv2d: input with {x.shape[1]} channels does not fit filters of shape "
            f"{tuple(weight.shape)} with groups={groups}"
        )
    for size, k, d, p in zip(x.shape[2:], kernel, dilation, pads):
        if size + sum(p) < d * (k - 1) + 1:
            raise ValueError(
                f"conv2d: input of shape {tuple(x.shape)} is smaller than the "
                f"{kernel[0]}x{kernel[1]} kernel (dilation {dilation}, padding {padding})"
            )
    return conv_fast.ChannelsLastConv2d.apply(
        x, weight, bias, stride=stride, padding=pads, dilation=dilation, groups=groups
    )


def _pool(op, name, x, kernel_size, stride, padding) -> Tensor:
    _check_image(name, x)
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if ph > kernel[0] // 2 or pw > kernel[1] // 2:
        raise ValueError(f"{name}: padding must be at most half the kernel size")
    if x.shape[2] + 2 * ph < kernel[0] or x.shape[3] + 2 * pw < kernel[1]:
        raise ValueError(
            f"{name}: input of shape {tuple(x.shape)} is smaller than the {kernel} window"
        )
    return op.apply(x, kernel=kernel, stride=stride, padding=((ph, ph), (pw, pw)))


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """The largest value of each window (stride defaults to the kernel size)."""
    return _pool(pool_fast.ChannelsLastMaxPool2d, "max_pool2d", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """The mean of each window (padding counted as zeros, as PyTorch's default)."""
    return _pool(pool_fast.ChannelsLastAvgPool2d, "avg_pool2d", x, kernel_size, stride, padding)


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    """Average into an ``output_size`` grid whatever the input size (PyTorch's bins)."""
    _check_image("adaptive_avg_pool2d", x)
    out_h, out_w = pair(output_size, "output_size")
    h, w = x.shape[2:]
    if h % out_h == 0 and w % out_w == 0:  # equal bins: plain average pooling (e.g. global)
        kernel = (h // out_h, w // out_w)
        return pool_fast.ChannelsLastAvgPool2d.apply(
            x, kernel=kernel, stride=kernel, padding=((0, 0), (0, 0))
        )
    return conv.AdaptiveAvgPool2d.apply(x, output_size=(out_h, out_w))


def dropout2d(x, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels with probability p (scaling the rest by 1/(1-p))."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = rng().random((x.shape[0], x.shape[1], 1, 1), dtype=xp.float64) >= p
    return Mul.apply(x, keep.astype(x.dtype) * x.dtype.type(1 / (1 - p)))
