"""Sums along an array's last axis or over its leading axes as BLAS matrix-vector products.

``g @ ones(n)`` (a row of g summed per row) and ``ones(m) @ g`` (its rows added up) read g once
with BLAS's vector kernels; NumPy's ``sum`` along an axis is several times slower on the wide or
tall float arrays of a training step (a softmax over 10,000 words, a bias gradient over 700 rows).
Other dtypes, and arrays that are not contiguous, take NumPy's ``sum``.

A big product runs on one BLAS thread: OpenBLAS splits a matrix-vector product over its threads
from about 9,216 elements on, and a row at the edge of a thread's share is then summed in another
order, so the sums would change in the last bit with the number of threads (and a run would not
repeat exactly on another machine or under ``auto`` threads). The callers that sum a lot split
their rows over chainrule's own pool (``threads.by_rows``), whose blocks never depend on threads.
"""

from __future__ import annotations

import math

from .backend import xp
from .threads import single_threaded_blas

_ones: dict = {}
_BLAS_TYPES = (xp.float32, xp.float64)
_ONE_THREAD_BELOW = 8192  # elements: OpenBLAS runs smaller products on one thread by itself


def ones(n: int, dtype) -> xp.ndarray:
    """A read-only vector of n ones (kept, shared): ``ones(n) @ g`` sums the rows of g with one
    BLAS matrix-vector product."""
    dtype = xp.dtype(dtype)
    vector = _ones.get(dtype)
    if vector is None or vector.size < n:
        vector = xp.ones(max(n, 1024), dtype=dtype)
        vector.flags.writeable = False
        _ones[dtype] = vector
    return vector[:n]


def _by_blas(x) -> bool:
    return x.dtype in _BLAS_TYPES and x.flags.c_contiguous and x.ndim > 0 and x.size > 0


def last_axes_sums(x, count: int = 1):
    """The sums over x's last ``count`` axes, keeping them (length 1): (..., n) -> (..., 1)."""
    kept = x.shape[: x.ndim - count]
    if not _by_blas(x):
        return x.sum(axis=tuple(range(len(kept), x.ndim)), keepdims=True)
    size = math.prod(x.shape[len(kept) :])
    return _product(x.reshape(-1, size), ones(size, x.dtype)).reshape(*kept, *(1,) * count)


def leading_axes_sums(x, count: int):
    """The sums over x's first ``count`` axes, dropping them: (a, b, ..., n) -> (..., n)."""
    if not _by_blas(x) or count == 0:
        return x.sum(axis=tuple(range(count)))
    rest = x.shape[count:]
    rows = x.reshape(-1, math.prod(rest))
    return _product(ones(len(rows), x.dtype), rows).reshape(rest)


def _product(a, b):
    """a @ b, on one BLAS thread when big enough for OpenBLAS to use several (see above)."""
    if max(a.size, b.size) < _ONE_THREAD_BELOW:
        return a @ b
    with single_threaded_blas():
        return a @ b
