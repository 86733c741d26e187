"""Batch normalisation in training mode, fused: forward and its (well-known) derivative together."""

from __future__ import annotations

import math

from ..backend import xp
from ..function import Function
from ..sums import last_axes_sums


class BatchNorm(Function):
    """Normalise over ``axes`` (all but the channel axis 1), then scale and shift:
    x_hat = (x - mean) / sqrt(var + eps),   y = weight x_hat + bias   (var biased, over M values).
    dweight = sum(dy x_hat),  dbias = sum(dy),
    dx = weight / (M sqrt(var + eps)) * (M dy - sum(dy) - x_hat sum(dy x_hat)).

    The same result as composing mean, var, sqrt and division (tests check both agree), with one
    node instead of a dozen. Returns y; pass a dict as ``stats_out`` to receive the batch "mean"
    and "var" (per channel).
    """

    def forward(self, x, weight, bias, eps=1e-5, stats_out=None):
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(var + eps)
        x_hat = centred * inv_std
        if stats_out is not None:
            stats_out["mean"], stats_out["var"] = mean.reshape(-1), var.reshape(-1)
        scale = weight.reshape(shape) if weight is not None else None
        self.save(x_hat, inv_std, scale, axes)
        y = x_hat * scale if scale is not None else x_hat.copy()
        if bias is not None:
            y += bias.reshape(shape)
        return y

    def backward(self, grad):
        x_hat, inv_std, scale, axes = self.saved
        count = grad.size // grad.shape[1]
        sum_grad = grad.sum(axis=axes, keepdims=True)
        sum_grad_x_hat = (grad * x_hat).sum(axis=axes, keepdims=True)
        grad_x = None
        if self.needs_grad[0]:
            grad_x = (grad - (sum_grad + x_hat * sum_grad_x_hat) / count) * inv_std
            if scale is not None:
                grad_x *= scale
        return grad_x, sum_grad_x_hat.reshape(-1), sum_grad.reshape(-1)


def _means(x, dims: int):
    """The mean over x's last ``dims`` axes, kept as length 1."""
    return last_axes_sums(x, dims) * (1 / math.prod(x.shape[x.ndim - dims :]))


class LayerNorm(Function):
    """Normalise each example over its last ``dims`` axes, then scale and shift:
    x_hat = (x - mean) / sqrt(var + eps),   y = weight x_hat + bias   (var biased, over M values).
    dweight = sum(dy x_hat),  dbias = sum(dy)  (over the leading axes, summed by the engine),
    dx = (g - mean(g) - x_hat mean(g x_hat)) / sqrt(var + eps),  g = weight dy.

    The same result as composing mean, var, sqrt and division (``nn.functional.layer_norm``
    before; the op table checks both against PyTorch), with one node instead of nine.
    """

    def forward(self, x, weight=None, bias=None, dims=1, eps=1e-5):
        x_hat = x - _means(x, dims)
        inv_std = _means(xp.square(x_hat), dims)
        inv_std += eps
        xp.sqrt(inv_std, out=inv_std)
        xp.divide(1, inv_std, out=inv_std)
        x_hat *= inv_std
        self.save(x_hat, inv_std, weight, dims)
        y = x_hat * weight if weight is not None else x_hat.copy()
        if bias is not None:
            y += bias
        return y

    def backward(self, grad):
        x_hat, inv_std, weight, dims = self.saved
        needs = self.needs_grad
        grad_weight = grad * x_hat if needs[1] else None
        grad_bias = grad if len(needs) > 2 and needs[2] else None
        grad_x = None
        if needs[0]:
            g = grad * weight if weight is not None else grad.copy()
            mean_g_x_hat = _means(g * x_hat, dims)
            g -= _means(g, dims)
            g -= x_hat * mean_g_x_hat
            g *= inv_std
            grad_x = g
        return grad_x, grad_weight, grad_bias
