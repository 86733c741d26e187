"""Reductions along an axis (int, tuple or None = all), with or without ``keepdims``."""

from __future__ import annotations

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
    """Give a reduced gradient back its reduced axes (length 1) so it broadcasts over the input."""
    return grad if keepdims else xp.expand_dims(grad, axes)


class Sum(Function):
    """z = sum_i x_i.   dz/dx_i = 1 (the gradient is copied to every summed element)."""

    saves_inputs = False

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axes(axis, x.ndim)
        self.save(x.shape, keepdims)
        return xp.sum(x, axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        shape, keepdims = self.saved
        return xp.broadcast_to(reinsert_axes(grad, self.axes, keepdims), shape)


class Mean(Function):
    """z = (1/N) sum_i x_i.   dz/dx_i = 1/N."""

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axes(axis, x.ndim)
        count = _count(x.shape, self.axes)
        self.save(x.shape, keepdims, count)
        return xp.mean(x, axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        shape, keepdims, count = self.saved
        return xp.broadcast_to(reinsert_axes(grad, self.axes, keepdims) / count, shape)


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
