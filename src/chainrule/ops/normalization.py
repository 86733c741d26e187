"""Batch normalisation in training mode, fused: forward and its (well-known) derivative together."""

from __future__ import annotations

from ..backend import xp
from ..function import Function


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
