"""Datasets as in ``torch.utils.data``: a base class, tensors as a dataset, subsets, splits.

A map-style dataset has ``len(dataset)`` and ``dataset[i] -> one example``. A dataset that can
also hand out many examples at once, ``dataset.batch(indices) -> tuple of arrays`` (as
:class:`TensorDataset` does), lets the DataLoader cut a batch with one indexing operation per
array instead of one ``__getitem__`` call per example: that is its fast path.
(The named data sets such as MNIST live in :mod:`chainrule.data.datasets`.)
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Sequence
from typing import Generic, TypeVar

from ..backend import xp
from ..creation import tensor
from ..generator import Generator, stream
from ..tensor import Tensor

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """Base class of map-style datasets: subclasses define ``__getitem__`` (and ``__len__``).

    Example:
        >>> class Squares(cr.utils.data.Dataset):
        ...     def __len__(self):
        ...         return 100
        ...     def __getitem__(self, i):
        ...         return cr.tensor([float(i)]), cr.tensor([float(i * i)])
    """

    def __getitem__(self, index) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Tensors (or arrays) that share their first dimension; example ``i`` is
    ``tuple(t[i] for t in tensors)``: ``TensorDataset(images, labels)``.

    Arrays are wrapped without a copy and keep their dtype; other data goes through
    ``cr.tensor`` (so Python floats become float32).
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(_as_tensor(t) for t in tensors)
        shapes = [t.shape for t in self.tensors]
        if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
            raise ValueError(
                f"TensorDataset: tensors must have the same length (first dimension), got shapes {shapes}"
            )

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def batch(self, indices) -> tuple:
        """The examples at ``indices`` (an index array or a slice), one new array per tensor."""
        if isinstance(indices, slice):  # a copy, as stacking would make: the batch is the user's
            return tuple(t._data[indices].copy() for t in self.tensors)
        return tuple(t._data[indices] for t in self.tensors)


def _as_tensor(data) -> Tensor:
    if isinstance(data, Tensor):
        return data
    if isinstance(data, xp.ndarray):
        return Tensor._make(data, False)
    return tensor(data)


class Subset(Dataset):
    """The examples of ``dataset`` at ``indices``, in that order: ``Subset(data, range(100))``."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset, self.indices = dataset, indices
        self._index_array = None

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: list) -> list:
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, positions) -> tuple:
        """``dataset.batch`` at ``indices[positions]`` (when the dataset has ``batch``)."""
        if self._index_array is None:
            self._index_array = xp.asarray(self.indices, dtype=xp.int64)
        return self.dataset.batch(self._index_array[positions])


def fetches_batches(dataset) -> bool:
    """Whether ``dataset.batch(indices)`` gives a whole batch at once (the loader's fast path)."""
    if isinstance(dataset, Subset):
        overridden = type(dataset).__getitem__ is not Subset.__getitem__
        return not overridden and fetches_batches(dataset.dataset)
    return callable(getattr(dataset, "batch", None))


class ConcatDataset(Dataset):
    """Datasets one after the other: example ``i`` of the first, then of the second, ..."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise ValueError(
                    f"ConcatDataset index {index} is out of range for length {len(self)}"
                )
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset index {index} is out of range for length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(
    dataset, lengths: Sequence[int | float], generator: Generator | None = None
) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping subsets of the given ``lengths``.

    ``lengths`` are counts that add up to ``len(dataset)``, or fractions that add up to 1 (each
    gets ``floor(fraction * n)`` examples, the remainder goes one by one to the first splits, as
    PyTorch does). The order comes from ``generator``, or from the global generator seeded by
    ``cr.manual_seed`` when there is none; the same seed gives the same split (though not the
    split PyTorch would draw: the random streams differ).
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1")
            counts.append(math.floor(n * fraction))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"random_split: split {i} is empty", stacklevel=2)
        lengths = counts
    if any(not isinstance(k, (int, xp.integer)) or k < 0 for k in lengths) or sum(lengths) != n:
        raise ValueError(
            f"random_split: lengths {lengths} must be non-negative counts that add up to the "
            f"dataset's length {n}, or fractions that add up to 1"
        )
    lengths = [int(k) for k in lengths]
    order = stream(generator).permutation(n).tolist()
    ends = itertools.accumulate(lengths)
    return [Subset(dataset, order[end - k : end]) for end, k in zip(ends, lengths)]
