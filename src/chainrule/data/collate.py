"""How the DataLoader turns a list of examples into one batch, as ``torch.utils.data``.

``default_collate`` stacks tensors, arrays and numbers into tensors with a new first (batch)
dimension and recurses into dicts, named tuples, tuples and lists, with PyTorch's types: Python
floats become float64, ints int64, a tuple of fields becomes a *list* of batched fields, strings
stay a list of strings. ``default_convert`` (used when automatic batching is off) only turns
arrays into tensors.
"""

from __future__ import annotations

import collections.abc
import copy

from ..api import stack
from ..backend import xp
from ..tensor import Tensor

_UNSUPPORTED = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def default_collate(batch: list):
    """One batch from a list of examples (see the module docstring for the rules)."""
    first = batch[0]
    if isinstance(first, (Tensor, xp.ndarray)):
        _check_same_shapes(batch)
    if isinstance(first, Tensor):
        if any(t.requires_grad for t in batch):
            return stack(batch)  # keeps the graph, as torch.stack does
        return Tensor._make(xp.stack([t._data for t in batch]), False)
    if isinstance(first, xp.ndarray):
        if first.dtype.kind in "SaUO":
            raise TypeError(_UNSUPPORTED.format(first.dtype))
        return Tensor._make(xp.stack(batch), False)
    if isinstance(first, (xp.bool_, xp.number)):
        return Tensor._make(xp.asarray(batch), False)
    if isinstance(first, float):
        return Tensor._make(xp.asarray(batch, dtype=xp.float64), False)
    if isinstance(first, int):  # bool included: a bool tensor, as in PyTorch
        return Tensor._make(xp.asarray(batch), False)
    if isinstance(first, (str, bytes)):
        return batch
    if isinstance(first, collections.abc.Mapping):
        return _rebuild_mapping(first, {k: default_collate([d[k] for d in batch]) for k in first})
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # a named tuple
        return type(first)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(first, collections.abc.Sequence):
        if any(len(example) != len(first) for example in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return fields if isinstance(first, tuple) else _rebuild_sequence(first, fields)
    raise TypeError(_UNSUPPORTED.format(type(first)))


def default_convert(data):
    """Arrays (and NumPy scalars) to tensors, inside dicts and sequences too; the rest as is."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, xp.ndarray):
        return data if data.dtype.kind in "SaUO" else Tensor._make(data, False)
    if isinstance(data, (xp.bool_, xp.number)):
        return Tensor._make(xp.asarray(data), False)
    if isinstance(data, collections.abc.Mapping):
        return _rebuild_mapping(data, {k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild_sequence(data, [default_convert(d) for d in data])
    return data


def _check_same_shapes(batch: list) -> None:
    for i, example in enumerate(batch):
        if example.shape != batch[0].shape:
            raise RuntimeError(
                "default_collate: examples must have the same shape to be stacked, got "
                f"{tuple(batch[0].shape)} at entry 0 and {tuple(example.shape)} at entry {i} "
                "(pad them, or pass a collate_fn)"
            )


def _rebuild_mapping(like, values: dict):
    """``values`` in a mapping of the same type as ``like`` where it can be made, else a dict."""
    try:
        if isinstance(like, collections.abc.MutableMapping):
            clone = copy.copy(like)
            clone.update(values)
            return clone
        return type(like)(values)
    except TypeError:
        return values


def _rebuild_sequence(like, items: list):
    try:
        if isinstance(like, collections.abc.MutableSequence):
            clone = copy.copy(like)
            for i, item in enumerate(items):
                clone[i] = item
            return clone
        return type(like)(items)
    except TypeError:
        return items
