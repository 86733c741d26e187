"""Reductions as functions and methods: ``sum``, ``mean``, ``max``, ``std``, ``norm``, ...

As in PyTorch: ``dim``/``keepdim`` (NumPy's ``axis``/``keepdims`` are accepted too), ``dtype=`` on
``sum``/``mean``/``prod``/``cumsum``, ``var``/``std`` with ``correction=1`` by default (the unbiased
estimate; NumPy's ``ddof=`` and the older ``unbiased=`` are accepted), and ``max``/``min`` in three
forms: over everything (a value), along one ``dim`` (a named tuple ``(values, indices)``), or
elementwise with a second tensor.
"""

from __future__ import annotations

import builtins
from collections import namedtuple

from ..backend import xp
from ..ops import activations as act
from ..ops import reductions as red
from ..tensor import Tensor, _raw, resolve_axis, resolve_keepdims
from .indexing import gather
from .math import astype, maximum, minimum
from .shapes import squeeze

MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (an int, a tuple, or None for all); integers and bools sum to int64."""
    if dtype is not None:
        input = astype(input, dtype)
    return red.Sum.apply(
        input, axis=resolve_axis(axis, dim), keepdims=resolve_keepdims(keepdim, keepdims)
    )


def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None) -> Tensor:
    """Mean over ``dim``; an integer tensor needs ``dtype=`` (or ``.float()``), as in PyTorch."""
    if dtype is not None:
        input = astype(input, dtype)
    elif _raw(input).dtype.kind != "f":  # PyTorch refuses too: say how to ask for it
        raise RuntimeError(
            f"mean() of a tensor of dtype {_raw(input).dtype}: it needs a floating-point tensor; "
            "convert it first (t.float().mean()) or pass dtype="
        )
    return red.Mean.apply(
        input, axis=resolve_axis(axis, dim), keepdims=resolve_keepdims(keepdim, keepdims)
    )


def prod(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None) -> Tensor:
    """Product over ``dim`` (one axis, or None for all); integers multiply to int64."""
    if dtype is not None:
        input = astype(input, dtype)
    elif _raw(input).dtype.kind in "iub":
        input = astype(input, "int64")
    return red.Prod.apply(
        input, axis=resolve_axis(axis, dim), keepdims=resolve_keepdims(keepdim, keepdims)
    )


def cumsum(input, dim=None, *, dtype=None, axis=None) -> Tensor:
    """Running sums along ``dim``: z_i = x_0 + ... + x_i."""
    axis = resolve_axis(axis, dim)
    if not isinstance(axis, int):
        raise TypeError(f"cumsum needs one dim (an int), got {axis!r}")
    ndim = _raw(input).ndim
    if not -builtins.max(ndim, 1) <= axis < builtins.max(ndim, 1):
        raise IndexError(f"cumsum: dim {axis} is out of range for {ndim} dimensions")
    if dtype is not None:
        input = astype(input, dtype)
    elif _raw(input).dtype.kind in "iub":
        input = astype(input, "int64")
    if ndim == 0:
        return red.CumSum.apply(input.reshape(1), axis=0).reshape(())
    return red.CumSum.apply(input, axis=axis % ndim)


def var(
    input,
    dim=None,
    unbiased=None,
    keepdim=False,
    *,
    correction=None,
    ddof=None,
    axis=None,
    keepdims=None,
) -> Tensor:
    """Variance: sum (x - mean)^2 / (N - correction), ``correction=1`` by default (PyTorch's
    unbiased estimate; ``correction=0`` or ``ddof=0`` or ``unbiased=False`` for NumPy's)."""
    return _spread(red.Var, input, dim, unbiased, keepdim, correction, ddof, axis, keepdims)


def std(
    input,
    dim=None,
    unbiased=None,
    keepdim=False,
    *,
    correction=None,
    ddof=None,
    axis=None,
    keepdims=None,
) -> Tensor:
    """Standard deviation: sqrt(var), with ``correction=1`` by default (see :func:`var`)."""
    return _spread(red.Std, input, dim, unbiased, keepdim, correction, ddof, axis, keepdims)


def _spread(op, input, dim, unbiased, keepdim, correction, ddof, axis, keepdims) -> Tensor:
    """:func:`var` or :func:`std` (``op``) with PyTorch's and NumPy's arguments resolved."""
    if isinstance(dim, bool):  # var(x, True): PyTorch's older var(input, unbiased)
        dim, unbiased = None, dim
    return op.apply(
        input,
        axis=resolve_axis(axis, dim),
        keepdims=resolve_keepdims(keepdim, keepdims),
        ddof=_correction(correction, ddof, unbiased),
    )


def _correction(correction, ddof, unbiased) -> float:
    given = [c for c in (correction, ddof) if c is not None]
    if len(given) + (unbiased is not None) > 1:
        raise TypeError("pass one of correction=, ddof= and unbiased=")
    if unbiased is not None:
        return 1 if unbiased else 0
    return given[0] if given else 1


def norm(
    input, p="fro", dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None
) -> Tensor:
    """The p-norm (sum |x|^p)^(1/p) over ``dim`` (all values by default): ``p=2`` or ``'fro'``
    is the Euclidean length, ``p=1`` the sum of magnitudes, ``p=float('inf')`` the largest one."""
    if p == "fro" or p is None:
        p = 2.0
    if isinstance(p, str) or not (p > 0):
        raise ValueError(f"norm: p must be a positive number, 'fro' or inf, got {p!r}")
    if dtype is not None:
        input = astype(input, dtype)
    return red.Norm.apply(
        input,
        p=float(p),
        axis=resolve_axis(axis, dim),
        keepdims=resolve_keepdims(keepdim, keepdims),
    )


def logsumexp(input, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """log sum e^x over ``dim`` (all values by default), without overflow."""
    axis = red.normalize_axes(resolve_axis(axis, dim), _raw(input).ndim)
    return act.LogSumExp.apply(input, axis=axis, keepdims=resolve_keepdims(keepdim, keepdims))


# -- largest and smallest ------------------------------------------------------------------------


def amax(input, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """Largest value over ``dim`` (an int, a tuple, or all); tied maxima share the gradient."""
    return red.Max.apply(
        input,
        axis=_all_if_empty(resolve_axis(axis, dim)),
        keepdims=resolve_keepdims(keepdim, keepdims),
    )


def amin(input, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """Smallest value over ``dim`` (an int, a tuple, or all); tied minima share the gradient."""
    return red.Min.apply(
        input,
        axis=_all_if_empty(resolve_axis(axis, dim)),
        keepdims=resolve_keepdims(keepdim, keepdims),
    )


def _all_if_empty(axis):
    return None if axis == () else axis


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """PyTorch's three forms:

    * ``max(t)``: the largest value (tied maxima share the gradient);
    * ``max(t, dim, keepdim=False)``: a named tuple ``(values, indices)`` along ``dim``, the
      gradient going to the first largest value of each slice;
    * ``max(t, other)``: the elementwise maximum (:func:`maximum`).
    """
    return _extreme(input, dim, keepdim, axis, keepdims, red.Max, maximum, "argmax", MaxResult)


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """``min(t)``, ``min(t, dim)`` -> ``(values, indices)``, ``min(t, other)``: as :func:`max`."""
    return _extreme(input, dim, keepdim, axis, keepdims, red.Min, minimum, "argmin", MinResult)


def _extreme(input, dim, keepdim, axis, keepdims, op, elementwise, arg, result):
    if isinstance(dim, Tensor):
        return elementwise(input, dim)
    axis = resolve_axis(axis, dim)
    keepdim = resolve_keepdims(keepdim, keepdims)
    if axis is None:
        return op.apply(input, axis=None, keepdims=False)
    input = _as_tensor(input)  # an array too: ``torch.max(outputs.data, 1)`` in old tutorials
    if not isinstance(axis, int):
        raise TypeError(
            f"{result.__name__}(dim=...) takes one dimension, got {axis!r}; use "
            f"a{result.__name__}(t, dim=...) to reduce several"
        )
    indices = getattr(Tensor, arg)(input, axis, keepdim=True)
    values = gather(input, axis, indices)
    if not keepdim:
        values = squeeze(values, axis)
        indices = Tensor._make(xp.squeeze(indices._data, axis), False)
    return result(values, indices)


def argmax(input, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """Index of the largest value (of the flattened tensor, or along ``dim``)."""
    return Tensor.argmax(_as_tensor(input), dim, keepdim, axis=axis, keepdims=keepdims)


def argmin(input, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """Index of the smallest value (of the flattened tensor, or along ``dim``)."""
    return Tensor.argmin(_as_tensor(input), dim, keepdim, axis=axis, keepdims=keepdims)


def all(input, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    """Whether every value is true (nonzero), over ``dim`` or everything."""
    return Tensor.all(_as_tensor(input), dim, keepdim, axis=axis, keepdims=keepdims)


def any(input, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    """Whether some value is true (nonzero), over ``dim`` or everything."""
    return Tensor.any(_as_tensor(input), dim, keepdim, axis=axis, keepdims=keepdims)


def count_nonzero(input, dim=None) -> Tensor:
    """How many values are not zero (over ``dim`` or everything), as int64."""
    return Tensor._make(xp.asarray(xp.count_nonzero(_raw(input), axis=dim), dtype=xp.int64), False)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._make(xp.asarray(x), False)
