"""Changing shapes and cutting and joining tensors: ``reshape``, ``transpose``, ``cat``, ``split``...

Views (``reshape``, ``transpose``, ``expand``, ``narrow``, ``chunk``, ...) share the input's
storage, as in PyTorch; ``repeat``, ``flip`` and ``cat`` make new tensors. Gradients move back
the way the values moved.
"""

from __future__ import annotations

import math as _math

from ..backend import xp
from ..ops import reductions as red
from ..ops import shape as sh
from ..tensor import Tensor, _raw, resolve_axis
from . import indexing
from .indexing import _dim
from .math import write_out


def _sizes(sizes) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` alike."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        return tuple(sizes[0])
    return tuple(sizes)


def reshape(input, *sizes, shape=None) -> Tensor:
    """The same values in a new shape (one entry may be -1): ``reshape(t, (2, 3))``,
    ``t.reshape(2, 3)`` or ``reshape(t, shape=(2, 3))``."""
    shape = _sizes(sizes) if shape is None else tuple(shape)
    size = _raw(input).size
    known = _math.prod(n for n in shape if n != -1)
    if (
        shape.count(-1) > 1
        or (-1 in shape and (known == 0 or size % known))
        or (-1 not in shape and known != size)
    ):
        raise ValueError(f"cannot reshape a tensor of shape {_raw(input).shape} into {shape}")
    return sh.Reshape.apply(input, shape=shape)


def view_as(input, other) -> Tensor:
    """``input`` viewed with ``other``'s shape."""
    return reshape(input, _raw(other).shape)


reshape_as = view_as


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` into one."""
    shape = _raw(input).shape
    if not shape:
        return reshape(input, 1)
    start, end = _dim(start_dim, len(shape), "flatten"), _dim(end_dim, len(shape), "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(input, *shape[:start], -1, *shape[end + 1 :])


def unflatten(input, dim: int, sizes) -> Tensor:
    """Split axis ``dim`` into ``sizes`` (one may be -1)."""
    shape = _raw(input).shape
    axis = _dim(dim, len(shape), "unflatten")
    return reshape(input, *shape[:axis], *sizes, *shape[axis + 1 :])


def permute(input, *order, dims=None) -> Tensor:
    """Reorder the axes: ``permute(t, (2, 0, 1))``, ``t.permute(2, 0, 1)`` or ``dims=(2, 0, 1)``."""
    dims = _sizes(order) if dims is None else tuple(dims)
    ndim = _raw(input).ndim
    if len(dims) != ndim or sorted(d % max(ndim, 1) for d in dims) != list(range(ndim)):
        raise ValueError(f"permute dims {dims} are not a permutation of {ndim} axes")
    return sh.Permute.apply(input, axes=dims)


def transpose(input, *dims) -> Tensor:
    """Swap two axes (PyTorch's ``transpose(t, 0, 1)``); with no axes reverse them all, with one
    full permutation reorder them (NumPy's ``transpose``)."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        return permute(input, *dims[0])
    if not dims:
        return sh.Permute.apply(input, axes=None)
    if len(dims) == 2:
        ndim = _raw(input).ndim
        i, j = _dim(dims[0], ndim, "transpose"), _dim(dims[1], ndim, "transpose")
        order = list(range(ndim))
        order[i], order[j] = order[j], order[i]
        return sh.Permute.apply(input, axes=tuple(order))
    return permute(input, *dims)


swapaxes = swapdims = transpose


def t(input) -> Tensor:
    """The transpose of a matrix (a view; a 0-D or 1-D tensor keeps its shape)."""
    ndim = _raw(input).ndim
    if ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dimensions, got {ndim}; use transpose")
    return sh.Permute.apply(input, axes=None)


def matrix_transpose(input) -> Tensor:
    """Swap the last two axes (``t.mT``): a batch of matrices, each transposed."""
    ndim = _raw(input).ndim
    if ndim < 2:
        raise ValueError(f"mT needs a tensor with >= 2 dimensions, got {ndim}")
    return transpose(input, -2, -1)


def movedim(input, source, destination) -> Tensor:
    """Move the axes ``source`` to the positions ``destination`` (the others keep their order)."""
    ndim = _raw(input).ndim
    source = [source] if isinstance(source, int) else list(source)
    destination = [destination] if isinstance(destination, int) else list(destination)
    if len(source) != len(destination):
        raise ValueError(f"movedim: {len(source)} source dims but {len(destination)} destinations")
    source = [_dim(d, ndim, "movedim") for d in source]
    destination = [_dim(d, ndim, "movedim") for d in destination]
    order = [n for n in range(ndim) if n not in source]
    for d, s in sorted(zip(destination, source)):
        order.insert(d, s)
    return permute(input, *order)


moveaxis = movedim


def expand(input, *sizes) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps an axis as it is)."""
    sizes = _sizes(sizes)
    shape = _raw(input).shape
    old = (1,) * (len(sizes) - len(shape)) + shape
    sizes = tuple(o if n == -1 else n for n, o in zip(sizes, old))
    try:
        xp.broadcast_shapes(shape, sizes)
        if len(sizes) < len(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"cannot expand a tensor of shape {shape} to {sizes}") from None
    return sh.Expand.apply(input, shape=sizes)


def expand_as(input, other) -> Tensor:
    return expand(input, _raw(other).shape)


def broadcast_to(input, shape) -> Tensor:
    return expand(input, *shape)


def squeeze(input, dim=None, *, axis=None) -> Tensor:
    """Remove axes of length 1 (all of them, or the ones named that have length 1)."""
    shape = _raw(input).shape
    named = resolve_axis(axis, dim)
    axes = red.normalize_axes(named, len(shape))
    # as PyTorch (unlike NumPy): a named axis that is longer than 1 is kept, not an error
    return reshape(input, *(n for i, n in enumerate(shape) if i not in axes or n != 1))


def unsqueeze(input, dim=None, *, axis=None) -> Tensor:
    """Insert an axis of length 1 at ``dim``."""
    dim = resolve_axis(axis, dim)
    shape = list(_raw(input).shape)
    if not isinstance(dim, int) or not -len(shape) - 1 <= dim <= len(shape):
        raise IndexError(f"unsqueeze: dim {dim!r} is out of range for shape {tuple(shape)}")
    shape.insert(dim % (len(shape) + 1), 1)
    return reshape(input, *shape)


def cat(tensors, dim: int = 0, *, axis=None, out=None) -> Tensor:
    """Join tensors along an existing axis (their types are promoted, as in PyTorch)."""
    tensors = list(tensors)
    dim = dim if axis is None else axis
    _check_same_shapes("cat", tensors, skip_axis=dim)
    return write_out(sh.Concatenate.apply(*tensors, axis=dim), out)


concatenate = concat = cat


def stack(tensors, dim: int = 0, *, axis=None, out=None) -> Tensor:
    """Stack same-shaped tensors along a new axis."""
    tensors = list(tensors)
    _check_same_shapes("stack", tensors, skip_axis=None)
    return write_out(sh.Stack.apply(*tensors, axis=dim if axis is None else axis), out)


def _check_same_shapes(name, tensors, skip_axis) -> None:
    if not tensors:
        raise ValueError(f"{name} needs at least one tensor")
    shapes = [_raw(t).shape for t in tensors]
    first = list(shapes[0])
    for s in shapes[1:]:
        s = list(s)
        if skip_axis is not None and len(s) == len(first) and len(s) > 0:
            a = skip_axis % len(s)
            s[a] = first[a]
        if s != first:
            raise ValueError(f"{name}: tensors must have matching shapes, got {shapes}")


def pad(input, pad_width, value: float = 0.0) -> Tensor:
    """Pad with a constant; ``pad_width`` as in ``np.pad`` (per-axis ``(before, after)``)."""
    return sh.Pad.apply(input, pad_width=pad_width, value=value)


# -- repeating and reversing ---------------------------------------------------------------------


def repeat(input, *repeats) -> Tensor:
    """Tile the tensor: ``t.repeat(2, 3)`` repeats it twice along axis 0 and 3 times along 1
    (``repeats`` may have more entries than ``t`` has axes: new leading axes)."""
    repeats = _sizes(repeats)
    if len(repeats) < _raw(input).ndim:
        raise RuntimeError(
            f"repeat: {len(repeats)} repeat counts for a tensor with {_raw(input).ndim} "
            "dimensions; give at least one per dimension"
        )
    return sh.Repeat.apply(input, repeats=repeats)


def tile(input, dims) -> Tensor:
    """Like :func:`repeat`, with missing leading counts taken as 1."""
    dims = tuple(dims)
    return repeat(input, *((1,) * (_raw(input).ndim - len(dims)) + dims))


def flip(input, *axes, dims=None) -> Tensor:
    """Reverse the order of the values along ``dims`` (a copy): ``flip(t, (0, 1))``,
    ``t.flip(0, 1)`` or ``dims=(0, 1)``."""
    dims = _sizes(axes) if dims is None else tuple(dims)
    ndim = _raw(input).ndim
    return sh.Flip.apply(input, axes=tuple(_dim(d, ndim, "flip") for d in dims))


def roll(input, shifts, dims=None) -> Tensor:
    """Shift the values by ``shifts`` along ``dims``, those pushed past the end coming round to
    the start, as PyTorch's: ``roll(t, 1, 0)``, ``roll(t, (1, -2), (0, 1))``; without ``dims``
    along the flattened tensor (its shape kept)."""
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    dims = () if dims is None else tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in shifts):
        raise TypeError(f"roll: shifts must be integers, got {shifts!r}")
    ndim = _raw(input).ndim
    if (not dims and len(shifts) == 1) or ndim == 0:
        return sh.Roll.apply(input, shifts=shifts[0], axes=None)
    if len(shifts) != len(dims):
        raise ValueError(
            f"roll: shifts and dims must align: {len(shifts)} shifts for {len(dims)} dims"
        )
    return sh.Roll.apply(input, shifts=shifts, axes=tuple(_dim(d, ndim, "roll") for d in dims))


# -- cutting -------------------------------------------------------------------------------------


def narrow(input, dim: int, start: int, length: int) -> Tensor:
    """The view of ``length`` slices starting at ``start`` along ``dim``."""
    shape = _raw(input).shape
    axis = _dim(dim, len(shape), "narrow")
    start = int(start) + (shape[axis] if int(start) < 0 else 0)
    if not 0 <= start <= start + length <= shape[axis] or length < 0:
        raise IndexError(
            f"narrow: start {start} and length {length} do not fit dim {dim} of size {shape[axis]}"
        )
    return indexing.index(input, (slice(None),) * axis + (slice(start, start + length),))


def select(input, dim: int, index: int) -> Tensor:
    """The slice at position ``index`` along ``dim`` (that axis removed)."""
    shape = _raw(input).shape
    axis = _dim(dim, len(shape), "select")
    if not -shape[axis] <= index < shape[axis]:
        raise IndexError(
            f"select: index {index} is out of range for dim {dim} of size {shape[axis]}"
        )
    return indexing.index(input, (slice(None),) * axis + (int(index),))


def unbind(input, dim: int = 0) -> tuple:
    """The slices along ``dim``, as a tuple of views."""
    axis = _dim(dim, _raw(input).ndim, "unbind")
    return tuple(select(input, axis, i) for i in range(_raw(input).shape[axis]))


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Cut along ``dim`` into pieces of ``split_size_or_sections`` (the last may be shorter), or
    into pieces of the listed sizes (which must add up to the length)."""
    axis = _dim(dim, _raw(tensor).ndim, "split")
    length = _raw(tensor).shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != length:
            raise ValueError(
                f"split: sizes {sizes} do not add up to the length {length} of dim {dim}"
            )
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    return tuple(narrow(tensor, axis, s, n) for s, n in zip(starts, sizes))


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    """Cut along ``dim`` into ``chunks`` pieces of ceil(length / chunks) (so maybe fewer pieces)."""
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks!r}")
    length = _raw(input).shape[_dim(dim, _raw(input).ndim, "chunk")]
    return split(input, max(-(-length // chunks), 1), dim)
