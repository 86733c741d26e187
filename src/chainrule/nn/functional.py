"""``cr.nn.functional`` (imported as ``F``): layers and losses as plain functions."""

from __future__ import annotations

import math
import warnings

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
from ..ops.attention import ScaledDotProductAttention
from ..ops.conv_transpose import ConvTranspose2d, transposed_size
from ..ops.normalization import BatchNorm, LayerNorm
from ..tensor import Tensor, _raw, as_array
from .embedding import embedding  # noqa: F401 - F.embedding
from .losses import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
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


def dropout(x, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout: zero each value with probability p, scale the rest by 1/(1-p)
    (``inplace``: write the result into ``x``, as PyTorch's)."""
    return _dropout("dropout", x, p, training, inplace, x.shape)


def _dropout(name: str, x, p: float, training: bool, inplace: bool, noise_shape: tuple) -> Tensor:
    """x times a mask of ``noise_shape`` (broadcast over x) keeping each entry with probability
    1 - p, scaled by 1/(1-p)."""
    if not 0 <= p < 1:
        raise ValueError(f"{name} probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    result = Mul.apply(x, _kept_and_scaled(noise_shape, p, x.dtype))
    return x.copy_(result) if inplace else result


def _kept_and_scaled(shape: tuple, p: float, dtype):
    """1/(1-p) with probability 1 - p (to within 2^-32), else 0: a random 32-bit integer per
    entry, kept where it is at least p 2^32 (raw bits: several times cheaper than floats)."""
    count = math.prod(shape)
    bits = rng().bit_generator.random_raw((count + 1) // 2).view(xp.uint32)[:count]
    mask = (bits >= xp.uint32(int(p * 2**32))).astype(dtype).reshape(shape)
    mask *= dtype.type(1 / (1 - p))
    return mask


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
    """Normalise each example over its last ``len(normalized_shape)`` axes, then scale and shift
    (one fused op, :class:`~chainrule.ops.normalization.LayerNorm`)."""
    return LayerNorm.apply(x, weight, bias, dims=len(normalized_shape), eps=eps)


# -- attention ---------------------------------------------------------------------------------


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(query key^T * scale + mask) value, as ``torch.nn.functional``'s (one fused op,
    :class:`~chainrule.ops.attention.ScaledDotProductAttention`).

    Args:
        query, key, value: (..., L, E), (..., S, E), (..., S, Ev); leading axes broadcast.
        attn_mask: boolean, True where a query may attend to a key (PyTorch's convention here,
            the opposite of ``MultiheadAttention``'s), or float, added to the scores; it
            broadcasts to (..., L, S).
        dropout_p: drop attention weights with this probability (always, as PyTorch's: pass 0
            when evaluating).
        is_causal: query i attends to keys 0..i only (a top-left lower triangle); no
            ``attn_mask`` with it.
        scale: multiplies the scores; default 1/sqrt(E).
        enable_gqa: grouped-query attention: the key and value heads (axis -3) are repeated to
            the query's number of heads.

    Shape: (..., L, Ev). A query with every key masked gets output 0, as PyTorch's.
    """
    q, k, v = (_raw(t) for t in (query, key, value))
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(
            "scaled_dot_product_attention: query, key and value need at least 2 dimensions, "
            f"got shapes {q.shape}, {k.shape}, {v.shape}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"scaled_dot_product_attention: query {q.shape}, key {k.shape} and value {v.shape} "
            "do not fit: query and key need the same last dimension, key and value the same "
            "number of positions (axis -2)"
        )
    if not 0 <= dropout_p < 1:
        raise ValueError(
            f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}"
        )
    if enable_gqa:
        key, value = _repeat_heads(key, q.shape), _repeat_heads(value, q.shape)
    length, keys = q.shape[-2], k.shape[-2]
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
        attn_mask = xp.tri(length, keys, dtype=bool)
    mask = None if attn_mask is None else attention_mask(attn_mask, q.dtype, "attn_mask", True)
    keep = None
    if dropout_p > 0:
        batch = xp.broadcast_shapes(q.shape[:-2], k.shape[:-2])
        shape = xp.broadcast_shapes(
            (*batch, length, keys), _raw(mask).shape if mask is not None else ()
        )
        keep = _kept_and_scaled(shape, dropout_p, q.dtype)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    return ScaledDotProductAttention.apply(query, key, value, mask, scale=scale, keep=keep)


def attention_mask(mask, dtype, name: str, true_attends: bool):
    """An additive float mask: a boolean one becomes 0 where attending and -inf elsewhere
    (``true_attends`` says which value of the boolean means attend); a float one is kept as it
    is, in the queries' type (a tensor keeps its gradient)."""
    array = xp.asarray(_raw(mask))
    if array.dtype == xp.bool_:
        blocked = ~array if true_attends else array
        return xp.where(blocked, dtype.type(-xp.inf), dtype.type(0))
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be boolean or floating point, got dtype {array.dtype}")
    return mask if array.dtype == dtype else api.astype(mask, dtype)


def _repeat_heads(t, query_shape):
    heads, wanted = _raw(t).shape[-3], query_shape[-3]
    if wanted % heads:
        raise ValueError(
            f"scaled_dot_product_attention: enable_gqa needs the query's {wanted} heads to be a "
            f"multiple of the key's and value's {heads}"
        )
    return api.index(
        t, (Ellipsis, xp.repeat(xp.arange(heads), wanted // heads), slice(None), slice(None))
    )


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


def conv_transpose2d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """2-D transposed convolution of NCHW images with filters (in_channels,
    out_channels/groups, kh, kw): the gradient of ``conv2d`` with respect to its input (see
    :class:`~chainrule.ops.conv_transpose.ConvTranspose2d`). Arguments in PyTorch's order.

    Shape: (N, C_in, H, W) -> (N, C_out, H', W'),
    H' = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1.
    """
    return _conv_transpose(
        "conv_transpose2d", input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose1d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """1-D transposed convolution of (N, C_in, L) sequences with filters (in_channels,
    out_channels/groups, k): :func:`conv_transpose2d` over images one row high."""
    if input.ndim != 3 or weight.ndim != 3:
        raise ValueError(
            f"conv_transpose1d expects input (N, C, L) and weight (C_in, C_out/groups, k), got "
            f"shapes {tuple(input.shape)} and {tuple(weight.shape)}"
        )
    images = _conv_transpose(
        "conv_transpose1d",
        reshape(input, (input.shape[0], input.shape[1], 1, input.shape[2])),
        reshape(weight, (*weight.shape[:2], 1, weight.shape[2])),
        bias,
        (1, single(stride, "stride")),
        (0, single(padding, "padding")),
        (0, single(output_padding, "output_padding")),
        groups,
        (1, single(dilation, "dilation")),
    )
    return reshape(images, (images.shape[0], images.shape[1], images.shape[3]))


def single(value, name: str) -> int:
    """An int or a one-element tuple or list of an int (a 1-D layer's size)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"{name} must be an int or a tuple of one int, got {value!r}")


def _conv_transpose(name, x, weight, bias, stride, padding, output_padding, groups, dilation):
    """Check what PyTorch checks, then run the op (one line naming what was wrong)."""
    _check_image(name, x)
    if weight.ndim != 4:
        raise ValueError(
            f"{name}: weight of shape {tuple(weight.shape)}, expected (in_channels, "
            "out_channels/groups, *kernel_size)"
        )
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    output_padding, dilation = pair(output_padding, "output_padding"), pair(dilation, "dilation")
    if min(*stride, *dilation) < 1 or min(*padding, *output_padding) < 0:
        raise ValueError(f"{name}: stride and dilation must be >= 1, padding >= 0")
    if any(extra >= max(s, d) for extra, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"{name}: output_padding {output_padding} must be smaller than either stride "
            f"{stride} or dilation {dilation}"
        )
    c_in, per_group = weight.shape[:2]
    if not isinstance(groups, int) or groups < 1 or c_in % groups or x.shape[1] != c_in:
        raise ValueError(
            f"{name}: input with {x.shape[1]} channels does not fit filters of shape "
            f"{tuple(weight.shape)} with groups={groups}"
        )
    if bias is not None and tuple(bias.shape) != (per_group * groups,):
        raise ValueError(
            f"{name}: bias of shape {tuple(bias.shape)} for {per_group * groups} output channels"
        )
    sizes = zip(x.shape[2:], weight.shape[2:], stride, padding, dilation, output_padding)
    if min(transposed_size(*axis) for axis in sizes) < 1:
        raise ValueError(
            f"{name}: input of shape {tuple(x.shape)} with padding {padding} gives an empty output"
        )
    return ConvTranspose2d.apply(
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )


def pool_window(name: str, kernel_size, stride, padding) -> tuple:
    """(kernel, stride, padding) of a pooling window as pairs, checked as PyTorch checks them."""
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if min(*kernel, *stride) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{name}: kernel and stride must be >= 1 and padding >= 0")
    if ph > kernel[0] // 2 or pw > kernel[1] // 2:
        raise ValueError(f"{name}: padding must be at most half the kernel size")
    return kernel, stride, (ph, pw)


def _pool(op, name, x, kernel_size, stride, padding) -> Tensor:
    _check_image(name, x)
    kernel, stride, (ph, pw) = pool_window(name, kernel_size, stride, padding)
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


def dropout2d(x, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels (axis 1) with probability p, scaling the rest by 1/(1-p).

    As PyTorch's: an input that is not 3-D or 4-D is accepted with a warning (on a 2-D
    (N, C) input each value is its own channel, so it drops element-wise), and a 3-D input
    is taken as (N, C, L) with a warning.
    """
    if x.ndim < 2:
        raise ValueError(f"dropout2d got input of shape {tuple(x.shape)}: expected (N, C, ...)")
    if x.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated in "
            "PyTorch; use dropout instead (dropout2d drops channels of (N, C, H, W) images)",
            stacklevel=2,
        )
    elif x.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), as PyTorch "
            "does; use dropout1d to say so",
            stacklevel=2,
        )
    noise_shape = (*x.shape[:2], *(1,) * (x.ndim - 2))
    return _dropout("dropout2d", x, p, training, inplace, noise_shape)
