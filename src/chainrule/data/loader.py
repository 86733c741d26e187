"""Datasets and the DataLoader that cuts them into (shuffled) mini-batches.

A dataset is anything with ``len(dataset)`` and ``dataset.batch(indices) -> tuple of arrays``
(:class:`TensorDataset` is the usual one). Item-wise datasets (``dataset[i] -> tuple``) work too:
their items are stacked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ..backend import new_rng, xp
from ..tensor import Tensor


class Dataset(Protocol):
    """What the DataLoader needs: a length and a way to fetch examples by index."""

    def __len__(self) -> int: ...

    def __getitem__(self, index): ...


class TensorDataset:
    """Arrays (or tensors) that share their first axis: ``TensorDataset(images, labels)``."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(xp.asarray(getattr(a, "data", a)) for a in arrays)
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            shapes = [a.shape for a in self.arrays]
            raise ValueError(
                f"TensorDataset: arrays must have the same length, got shapes {shapes}"
            )

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def batch(self, indices) -> tuple:
        """The examples at ``indices`` (an index array or a slice), one array per component."""
        return tuple(a[indices] for a in self.arrays)


class DataLoader:
    """Mini-batches of a dataset as tensors.

    Args:
        dataset: a :class:`TensorDataset`, a pair of arrays ``(x, y)``, or any dataset.
        batch_size: examples per batch; ``None`` means the whole data set in one batch (plain
            gradient descent).
        shuffle: a new order every epoch, drawn from ``(seed, epoch)`` only, so it does not depend
            on (or disturb) any global random state, and a resumed run sees the same batches.
        drop_last: skip a last, smaller batch.

    Iterating twice gives two epochs. ``loader.epoch(e)`` gives the batches of epoch ``e``.
    """

    def __init__(
        self,
        dataset,
        batch_size: int | None = 32,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
    ):
        if isinstance(dataset, (tuple, list)):
            dataset = TensorDataset(*dataset)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if len(dataset) == 0:
            raise ValueError("DataLoader got an empty dataset")
        self.dataset, self.shuffle, self.drop_last, self.seed = dataset, shuffle, drop_last, seed
        self.batch_size = batch_size or len(dataset)
        self._epochs_started = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple]:
        epoch, self._epochs_started = self._epochs_started, self._epochs_started + 1
        return self.epoch(epoch)

    def order(self, epoch: int):
        """The example order of ``epoch`` (a permutation when shuffling, else None: in order)."""
        if not self.shuffle:
            return None
        return new_rng([self.seed, epoch]).permutation(len(self.dataset))

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple]:
        """The batches of ``epoch`` from ``start_batch`` on, each a tuple of tensors."""
        order = self.order(epoch)
        for b in range(start_batch, len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, len(self.dataset))
            indices = slice(lo, hi) if order is None else order[lo:hi]
            yield tuple(Tensor._make(a, False) for a in self._fetch(indices))

    def _fetch(self, indices) -> tuple:
        if hasattr(self.dataset, "batch"):
            return self.dataset.batch(indices)
        items = [self.dataset[int(i)] for i in xp.arange(len(self.dataset))[indices]]
        return tuple(
            xp.stack([xp.asarray(item[k]) for item in items]) for k in range(len(items[0]))
        )
