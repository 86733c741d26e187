"""Picking values out of a tensor: ``t[key]``, ``gather``, ``index_select``, ``masked_fill``, ...

Gradients flow back to the places the values came from (:class:`~chainrule.ops.shape.Index`,
:class:`~chainrule.ops.shape.Gather`); an index used twice receives both gradients.
"""

from __future__ import annotations

from ..backend import xp
from ..ops import shape as sh
from ..tensor import Tensor, _raw, _raw_key
from .math import where


def index(input, key) -> Tensor:
    """``input[key]`` with ints, slices, ``None``, ``...``, integer arrays or boolean masks."""
    key = _raw_key(key)
    result = sh.Index.apply(input, key=key)
    if result._base is not None:  # basic indexing: a view that in-place changes write back through
        result._view_of = (input, key)
    return result


_pick = index  # for the functions below whose argument is named ``index`` (PyTorch's name)


def gather(input, dim: int, index, *, sparse_grad: bool = False) -> Tensor:
    """out[i][j] = input[index[i][j]][j] for ``dim=0`` (likewise for any ``dim``): pick one value
    per position of ``index`` along ``dim``. ``index`` has the input's number of dimensions and is
    no longer than the input along the others."""
    shape, positions = _raw(input).shape, xp.asarray(_raw(index))
    if positions.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got dtype {positions.dtype}")
    if positions.ndim != len(shape) and not (positions.ndim <= 1 and len(shape) <= 1):
        raise RuntimeError(
            f"gather: index has {positions.ndim} dimensions, the input {len(shape)}; they must match"
        )
    axis = _dim(dim, len(shape), "gather")
    for d, (n_index, n_input) in enumerate(zip(positions.shape, shape)):
        if d != axis and n_index > n_input:
            raise RuntimeError(
                f"gather: index of shape {positions.shape} is larger than the input of shape "
                f"{shape} in dimension {d}"
            )
    if positions.size and (positions.min() < 0 or positions.max() >= (shape[axis] if shape else 1)):
        raise IndexError(
            f"gather: index values must be in [0, {shape[axis] if shape else 1}) along dim {dim}, "
            f"got values from {positions.min()} to {positions.max()}"
        )
    if not shape:
        return sh.Gather.apply(input.reshape(1), index=positions.reshape(-1), axis=0).reshape(
            positions.shape
        )
    return sh.Gather.apply(input, index=positions, axis=axis)


def index_select(input, dim: int, index) -> Tensor:
    """The slices of ``input`` at the positions ``index`` (1-D) along ``dim``."""
    positions = xp.asarray(_raw(index))
    if positions.ndim > 1 or positions.dtype.kind not in "iu":
        raise TypeError("index_select: index must be a 1-D integer tensor")
    axis = _dim(dim, _raw(input).ndim, "index_select")
    return _pick(input, (slice(None),) * axis + (positions.reshape(-1),))


def masked_fill(input, mask, value) -> Tensor:
    """A copy of ``input`` with ``value`` where ``mask`` (broadcast to its shape) is true."""
    mask = xp.asarray(_raw(mask))
    if mask.dtype != xp.bool_:
        raise TypeError(f"masked_fill expects a boolean mask, got dtype {mask.dtype}")
    shape = _raw(input).shape
    try:
        if xp.broadcast_shapes(mask.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise RuntimeError(
            f"masked_fill: mask of shape {mask.shape} does not broadcast to the input's {shape}"
        ) from None
    if not isinstance(value, Tensor):
        value = xp.asarray(value).astype(_raw(input).dtype)
    return where(mask, value, input)


def masked_select(input, mask) -> Tensor:
    """The values of ``input`` where ``mask`` is true, as a 1-D tensor (both are broadcast)."""
    mask = xp.asarray(_raw(mask))
    shape = xp.broadcast_shapes(mask.shape, _raw(input).shape)
    if shape != _raw(input).shape:
        input = sh.Expand.apply(input, shape=shape)
    return _pick(input, xp.broadcast_to(mask, shape))


def tril(input, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two axes (values above ``diagonal`` set to 0)."""
    n, m = _matrix_shape(input, "tril")
    return where(xp.tri(n, m, k=diagonal, dtype=bool), input, 0)


def triu(input, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two axes (values below ``diagonal`` set to 0)."""
    n, m = _matrix_shape(input, "triu")
    return where(~xp.tri(n, m, k=diagonal - 1, dtype=bool), input, 0)


def nonzero(input, *, as_tuple: bool = False):
    """Indices of the nonzero values: an (n, ndim) int64 tensor, or one tensor per axis."""
    array = xp.asarray(_raw(input))
    if as_tuple:
        return tuple(Tensor._make(i, False) for i in xp.nonzero(array))
    return Tensor._make(xp.argwhere(array), False)


def _matrix_shape(input, name: str) -> tuple:
    shape = _raw(input).shape
    if len(shape) < 2:
        raise RuntimeError(f"{name}: input must have at least 2 dimensions, got shape {shape}")
    return shape[-2:]


def _dim(dim, ndim: int, name: str) -> int:
    if not isinstance(dim, int) or not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{name}: dim {dim!r} is out of range for {ndim} dimensions")
    return dim % max(ndim, 1)
