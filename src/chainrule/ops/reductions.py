"""Reductions along an axis (int, tuple or None = all), with or without ``keepdims``."""

from __future__ import annotations

import math

from ..backend import ignore_float_errors, xp
from ..function import Function


def normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(out))


def reinsert_axes(grad, axes: tuple, keepdims: bool):
    """Give a reduced gradient back its reduced axes (length 1) so it broadcasts over the input
    (a 0-d gradient, from a reduction over every axis, broadcasts as it is)."""
    return grad if keepdims or grad.ndim == 0 else xp.expand_dims(grad, axes)


def spread(grad, shape: tuple):
    """``grad`` broadcast to ``shape``: a read-only view, or for a small shape a new array (which
    NumPy makes faster than the view, whose function runs in Python)."""
    if math.prod(shape) > 1024:
        return xp.broadcast_to(grad, shape)
    out = xp.empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


class Sum(Function):
    """z = sum_i x_i.   dz/dx_i = 1 (the gradient is copied to every summed element)."""

    saves_inputs = False

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axes(axis, x.ndim)
        self.save(x.shape, keepdims)
        return x.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        shape, keepdims = self.saved
        return spread(reinsert_axes(grad, self.axes, keepdims), shape)


class Mean(Function):
    """z = (1/N) sum_i x_i.   dz/dx_i = 1/N."""

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axes(axis, x.ndim)
        count = _count(x.shape, self.axes)
        self.save(x.shape, keepdims, count)
        return x.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        shape, keepdims, count = self.saved
        return spread(reinsert_axes(grad, self.axes, keepdims) / count, shape)


class Var(Function):
    """z = sum_i (x_i - mean)^2 / (N - ddof).   dz/dx_i = 2 (x_i - mean) / (N - ddof).

    ``ddof=0`` (NumPy's default) is the population variance; ``ddof=1`` the unbiased one
    (PyTorch's default ``correction=1``).
    """

    def forward(self, x, axis=None, keepdims=False, ddof=0):
        self.axes = normalize_axes(axis, x.ndim)
        centered = x - xp.mean(x, axis=self.axes, keepdims=True)
        divisor = max(_count(x.shape, self.axes) - ddof, 0)
        self.save(centered, keepdims, divisor)
        with ignore_float_errors(divide="ignore", invalid="ignore"):
            return xp.sum(centered * centered, axis=self.axes, keepdims=keepdims) / divisor

    def backward(self, grad):
        centered, keepdims, divisor = self.saved
        return reinsert_axes(grad, self.axes, keepdims) * centered * (2 / divisor)


class Std(Function):
    """z = sqrt(sum_i (x_i - mean)^2 / (N - ddof)).   dz/dx_i = (x_i - mean) / ((N - ddof) z),
    0 where z = 0 (all values equal), as PyTorch."""

    def forward(self, x, axis=None, keepdims=False, ddof=0):
        self.axes = normalize_axes(axis, x.ndim)
        centered = x - xp.mean(x, axis=self.axes, keepdims=True)
        divisor = max(_count(x.shape, self.axes) - ddof, 0)
        with ignore_float_errors(divide="ignore", invalid="ignore"):
            z = xp.sqrt(xp.sum(centered * centered, axis=self.axes, keepdims=True) / divisor)
        self.save(centered, z, keepdims, divisor)
        return z if keepdims else xp.squeeze(z, axis=self.axes)

    def backward(self, grad):
        centered, z, keepdims, divisor = self.saved
        with ignore_float_errors(divide="ignore", invalid="ignore"):
            local = xp.where(z == 0, 0, centered / (divisor * z)).astype(centered.dtype, copy=False)
        return reinsert_axes(grad, self.axes, keepdims) * local


class Max(Function):
    """z = max_i x_i.   dz/dx_i = [x_i = z] / (number of maxima): ties share the gradient equally."""

    reduce = staticmethod(xp.max)

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axes(axis, x.ndim)
        z = self.reduce(x, axis=self.axes, keepdims=True)
        self.save(x, z, keepdims)
        return z if keepdims else xp.squeeze(z, axis=self.axes)

    def backward(self, grad):
        x, z, keepdims = self.saved
        winners = (x == z).astype(grad.dtype)
        winners /= xp.sum(winners, axis=self.axes, keepdims=True)
        return reinsert_axes(grad, self.axes, keepdims) * winners


class Min(Max):
    """z = min_i x_i.   dz/dx_i = [x_i = z] / (number of minima): ties share the gradient equally."""

    reduce = staticmethod(xp.min)


def _count(shape: tuple, axes: tuple) -> int:
    count = 1
    for a in axes:
        count *= shape[a]
    return count


class Prod(Function):
    """z = prod_i x_i.   dz/dx_i = prod_{j != i} x_j.

    The products of the others are the running products from the left times those from the
    right (no division), so zeros in ``x`` get the right gradient.
    """

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axes(axis, x.ndim)
        self.save(x, keepdims)
        return xp.prod(x, axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        x, keepdims = self.saved
        return reinsert_axes(grad, self.axes, keepdims) * _product_of_others(x, self.axes)


def _product_of_others(x, axes: tuple):
    """For each element, the product of the other elements of its reduced group."""
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = x.transpose(rest + list(axes))
    flat = moved.reshape(*moved.shape[: len(rest)], -1)
    ones = xp.ones((*flat.shape[:-1], 1), dtype=x.dtype)
    left = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = xp.cumprod(xp.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = (left * right).reshape(moved.shape)
    return others.transpose(xp.argsort(rest + list(axes)))


class CumSum(Function):
    """z_i = sum_{j <= i} x_j along ``axis``.   dx_j = sum_{i >= j} dz_i (a cumulative sum from
    the end)."""

    saves_inputs = False

    def forward(self, x, axis=0):
        self.axis = axis
        return xp.cumsum(x, axis=axis)

    def backward(self, grad):
        return xp.flip(xp.cumsum(xp.flip(grad, self.axis), axis=self.axis), self.axis)


class Norm(Function):
    """The p-norm z = (sum_i |x_i|^p)^(1/p) over ``axis``.
    dz/dx_i = sign(x_i) |x_i|^(p-1) / z^(p-1)  (x / z for p = 2; 0 where z = 0, as PyTorch).
    p = inf: z = max_i |x_i|, dz/dx_i = sign(x_i) [|x_i| = z] / (number of maxima).
    """

    float_result = True

    def forward(self, x, p=2.0, axis=None, keepdims=False):
        self.axes = normalize_axes(axis, x.ndim)
        size = xp.abs(x)
        if p == float("inf"):
            z = xp.max(size, axis=self.axes, keepdims=True, initial=0)
        elif p == 2:
            z = xp.sqrt(xp.sum(x * x, axis=self.axes, keepdims=True))
        elif p == 1:
            z = xp.sum(size, axis=self.axes, keepdims=True)
        else:
            z = xp.sum(size**p, axis=self.axes, keepdims=True) ** (1 / p)
        z = z.astype(x.dtype, copy=False)
        self.save(x, z, p, keepdims)
        return z if keepdims else xp.squeeze(z, axis=self.axes)

    def backward(self, grad):
        x, z, p, keepdims = self.saved
        grad = reinsert_axes(grad, self.axes, keepdims)
        with ignore_float_errors(divide="ignore", invalid="ignore"):
            if p == float("inf"):
                winners = (xp.abs(x) == z).astype(x.dtype)
                local = xp.sign(x) * winners / xp.sum(winners, axis=self.axes, keepdims=True)
            elif p == 2:
                local = x / z
            elif p == 1:
                local = xp.sign(x)
            else:
                local = xp.sign(x) * xp.abs(x) ** (p - 1) / z ** (p - 1)
        return grad * xp.where(z == 0, 0, local).astype(x.dtype, copy=False)
