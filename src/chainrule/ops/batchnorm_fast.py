"""Fast batch normalisation of images in training mode: channels-last, in chunks of the batch on
the thread pool (:mod:`~chainrule.threads`).

The same math as the fused :class:`chainrule.ops.normalization.BatchNorm` (the tests hold the two
equal, values and gradients). Each chunk of examples is read as a (rows, C) matrix, a few hundred
KiB that stay in cache across the handful of passes made over it, and the sums over the batch
are matrix-vector products with a vector of ones (per chunk, added in chunk order). The
normalised input is not stored: backward rebuilds it chunk by chunk from x, the mean and
1/std, as PyTorch does.
"""

from __future__ import annotations

from ..backend import xp
from ..function import Function
from ..sums import leading_axes_sums
from ..threads import split_batch


def _column_sums(x_last, count_rows_of, channels, dtype) -> xp.ndarray:
    """Sum over the batch and the image of ``count_rows_of(rows)`` (a (rows, C) matrix per chunk)."""
    partial = {}

    def work(start, stop, chunk):
        rows = count_rows_of(x_last[start:stop].reshape(-1, channels), start, stop)
        partial[chunk] = leading_axes_sums(rows, 1)

    split_batch(work, len(x_last), x_last[0].size * x_last.itemsize)
    return sum(partial[t] for t in sorted(partial)).astype(dtype, copy=False)


class ChannelsLastBatchNorm2d(Function):
    """Normalise each channel of (N, C, H, W) over N, H, W, then scale and shift:
    x_hat = (x - mean) / sqrt(var + eps),   y = weight x_hat + bias   (var biased, over M values).
    dweight = sum(dy x_hat),  dbias = sum(dy),
    dx = weight / (M sqrt(var + eps)) * (M dy - sum(dy) - x_hat sum(dy x_hat)).

    Returns y as an (N, C, H, W) view of channels-last memory; ``stats_out`` (a dict) receives
    the batch "mean" and "var" per channel, as for :class:`~chainrule.ops.normalization.BatchNorm`.
    """

    def forward(self, x, weight, bias, eps=1e-5, stats_out=None):
        n, c, h, w = x.shape
        count = n * h * w
        x_last = x.transpose(0, 2, 3, 1)
        mean = _column_sums(x_last, lambda rows, *_: rows, c, x.dtype) / count

        def squared_deviations(rows, start, stop):
            centred = xp.empty(rows.shape, rows.dtype)
            xp.subtract(rows, mean, out=centred)
            return xp.multiply(centred, centred, out=centred)

        var = _column_sums(x_last, squared_deviations, c, x.dtype) / count
        inv_std = (1 / xp.sqrt(var + eps)).astype(x.dtype)
        scale = inv_std * weight if weight is not None else inv_std
        out = xp.empty((n, h, w, c), dtype=x.dtype)

        def normalise(start, stop, chunk):
            y = out[start:stop].reshape(-1, c)
            xp.subtract(x_last[start:stop].reshape(-1, c), mean, out=y)
            y *= scale
            if bias is not None:
                y += bias

        split_batch(normalise, n, h * w * c * x.itemsize)
        if stats_out is not None:
            stats_out["mean"], stats_out["var"] = mean, var
        self.save(x, mean, inv_std, weight)
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad):
        x, mean, inv_std, weight = self.saved
        n, c, h, w = x.shape
        count = n * h * w
        x_last, grad_last = x.transpose(0, 2, 3, 1), grad.transpose(0, 2, 3, 1)

        def normalised(start, stop):
            x_hat = xp.empty((stop - start, h, w, c), grad.dtype).reshape(-1, c)
            xp.subtract(x_last[start:stop].reshape(-1, c), mean, out=x_hat)
            return xp.multiply(x_hat, inv_std, out=x_hat)

        partial = {}

        def sums(start, stop, chunk):  # sum(dy) and sum(dy x_hat) in one pass over dy
            g = grad_last[start:stop].reshape(-1, c)
            g_x_hat = normalised(start, stop)
            g_x_hat *= g
            partial[chunk] = (leading_axes_sums(g, 1), leading_axes_sums(g_x_hat, 1))

        split_batch(sums, n, h * w * c * grad.itemsize)
        sum_grad, sum_grad_x_hat = (sum(partial[t][i] for t in sorted(partial)) for i in (0, 1))
        grad_x = None
        if self.needs_grad[0]:
            scale = inv_std * weight if weight is not None else inv_std
            per_x_hat, constant = scale * sum_grad_x_hat / count, scale * sum_grad / count
            grad_x = xp.empty((n, h, w, c), dtype=grad.dtype)

            def input_grad(start, stop, chunk):
                dx = grad_x[start:stop].reshape(-1, c)
                xp.multiply(grad_last[start:stop].reshape(-1, c), scale, out=dx)
                x_hat = normalised(start, stop)
                x_hat *= per_x_hat
                dx -= x_hat
                dx -= constant

            split_batch(input_grad, n, h * w * c * grad.itemsize)
            grad_x = grad_x.transpose(0, 3, 1, 2)
        return grad_x, sum_grad_x_hat, sum_grad
