"""Comparing and sorting: ``eq``/``lt``/..., ``isclose``, ``isnan``, logical ops, ``sort``, ``topk``.

Comparisons and tests give boolean tensors and are not differentiated. ``sort`` and ``topk``
return a named tuple ``(values, indices)`` as PyTorch's; the values are gathered from the input,
so gradients flow back to where each value came from.
"""

from __future__ import annotations

from collections import namedtuple

from ..backend import xp
from ..tensor import Tensor, _raw, compare
from .indexing import _dim, gather
from .math import clone
from .shapes import narrow

SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def _compare(ufunc, name: str):
    def comparison(input, other) -> Tensor:
        result = compare(ufunc, input, other)
        if result is NotImplemented:
            raise TypeError(f"{name}: cannot compare a tensor with a {type(other).__name__}")
        return result

    comparison.__name__ = name
    comparison.__doc__ = f"input {name} other, elementwise: a boolean tensor."
    return comparison


eq = _compare(xp.equal, "eq")
ne = not_equal = _compare(xp.not_equal, "ne")
lt = less = _compare(xp.less, "lt")
le = less_equal = _compare(xp.less_equal, "le")
gt = greater = _compare(xp.greater, "gt")
ge = greater_equal = _compare(xp.greater_equal, "ge")


def equal(input, other) -> bool:
    """True if both have the same shape and the same values."""
    a, b = xp.asarray(_raw(input)), xp.asarray(_raw(other))
    return a.shape == b.shape and bool(xp.all(a == b))


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """|input - other| <= atol + rtol |other|, elementwise."""
    close = xp.isclose(_raw(input), _raw(other), rtol=rtol, atol=atol, equal_nan=equal_nan)
    return Tensor._make(xp.asarray(close), False)


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """True if :func:`isclose` holds everywhere."""
    return bool(xp.allclose(_raw(input), _raw(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


def _test(ufunc, doc: str):
    def test(input) -> Tensor:
        return Tensor._make(xp.asarray(ufunc(_raw(input))), False)

    test.__name__, test.__doc__ = ufunc.__name__, doc
    return test


isnan = _test(xp.isnan, "Whether each value is NaN.")
isinf = _test(xp.isinf, "Whether each value is +inf or -inf.")
isfinite = _test(xp.isfinite, "Whether each value is neither NaN nor infinite.")
logical_not = _test(xp.logical_not, "not input, elementwise (zero is false).")


def _logical(ufunc, doc: str):
    def logical(input, other) -> Tensor:
        return Tensor._make(xp.asarray(ufunc(_raw(input), _raw(other))), False)

    logical.__name__, logical.__doc__ = ufunc.__name__, doc
    return logical


logical_and = _logical(xp.logical_and, "input and other, elementwise (zero is false).")
logical_or = _logical(xp.logical_or, "input or other, elementwise (zero is false).")
logical_xor = _logical(xp.logical_xor, "input xor other, elementwise (zero is false).")
bitwise_and = _logical(xp.bitwise_and, "input & other: and of booleans, bitwise and of integers.")
bitwise_or = _logical(xp.bitwise_or, "input | other: or of booleans, bitwise or of integers.")
bitwise_xor = _logical(xp.bitwise_xor, "input ^ other: xor of booleans or integers.")
bitwise_not = _test(xp.invert, "~input: not of booleans, bitwise not of integers.")


# -- sorting -------------------------------------------------------------------------------------


def argsort(input, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Tensor:
    """The indices that sort ``input`` along ``dim`` (equal values keep their order; NaN counts
    as the largest value, as in PyTorch)."""
    array = xp.asarray(_raw(input))
    if array.ndim == 0:
        return Tensor._make(xp.zeros((), dtype=xp.int64), False)
    axis = _dim(dim, array.ndim, "argsort")
    if not descending:
        order = xp.argsort(array, axis=axis, kind="stable")
    else:  # a stable descending order: sort the reversed values, then reverse back
        flipped = xp.argsort(xp.flip(array, axis), axis=axis, kind="stable")
        order = xp.flip(array.shape[axis] - 1 - flipped, axis)
    return Tensor._make(order.astype(xp.int64, copy=False), False)


def sort(input, dim: int = -1, descending: bool = False, *, stable: bool = False):
    """The values along ``dim`` in order, and where each came from: ``(values, indices)``."""
    indices = argsort(input, dim, descending)
    if _raw(input).ndim == 0:
        return SortResult(clone(input), indices)
    return SortResult(gather(input, dim, indices), indices)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, largest first."""
    ndim = _raw(input).ndim
    length = _raw(input).shape[_dim(dim, ndim, "topk")] if ndim else 1
    if not 0 <= k <= length:
        raise RuntimeError(f"topk: k={k} is out of range for dim {dim} of length {length}")
    if ndim == 0:
        return TopkResult(clone(input), Tensor._make(xp.zeros((), dtype=xp.int64), False))
    indices = narrow(argsort(input, dim, descending=largest), dim, 0, k).clone()
    return TopkResult(gather(input, dim, indices), indices)
