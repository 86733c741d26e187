"""Each process's share of the data: of every batch in training, of the whole set in evaluation.

Training splits every batch that one process would load (same seed, same epoch, same order) into
``world_size`` consecutive parts, one per rank, as ``numpy.array_split`` does: with ``m`` examples
rank ``r`` takes ``m // N`` of them, plus one if ``r < m % N``. The union over the ranks is exactly
the one-process batch, so averaging the ranks' gradients weighted by their part's size gives the
one-process gradient, whether or not ``N`` divides the batch.
"""

from __future__ import annotations

from ..data.dataset import Subset
from ..data.loader import DataLoader


def shard_bounds(m: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(lo, hi)``: rank ``rank``'s consecutive part of ``m`` items split ``world_size`` ways.

    >>> [shard_bounds(10, r, 3) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    base, extra = divmod(m, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def shard_of(task, rank: int, world_size: int):
    """Rank ``rank``'s part of one batch's indices (a slice, an index array or a list)."""
    if isinstance(task, slice):
        lo, hi = shard_bounds(task.stop - task.start, rank, world_size)
        return slice(task.start + lo, task.start + hi)
    lo, hi = shard_bounds(len(task), rank, world_size)
    return task[lo:hi]


class ShardedLoader(DataLoader):
    """This process's part of every batch of ``loader`` (see the module docstring).

    It has the loader's settings and the same number of steps per epoch; epoch ``e`` splits the
    batches ``loader.epoch(e)`` would give, so seeded shuffling and exact resume work as in one
    process. Every batch must hold at least one example per process.

    Args:
        loader: a :class:`~chainrule.data.DataLoader` with batching on.
        rank, world_size: which part to take, of how many.

    Example:
        >>> comm = cr.distributed.init()
        >>> loader = ShardedLoader(DataLoader(data, batch_size=256, shuffle=True, seed=0),
        ...                        comm.rank, comm.world_size)   # 128 each with 2 processes
    """

    def __init__(self, loader: DataLoader, rank: int, world_size: int):
        if loader.batch_sampler is None:
            raise ValueError(
                "ShardedLoader: the DataLoader has batching turned off (batch_size=None); "
                "each process takes a part of every batch, so give it a batch size"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"ShardedLoader: rank {rank} is not in 0..{world_size - 1}")
        vars(self).update(vars(loader))  # the same dataset, order, seed and settings
        self.rank, self.world_size = rank, world_size
        if loader.batch_size is not None:  # the batch sizes are known: say now if one is small
            n, size = len(loader.dataset), loader.batch_size
            sizes = [size] if n >= size else []
            if n % size and not loader.drop_last:
                sizes.append(n % size)
            self._check_sizes(sizes)

    def _check_sizes(self, sizes) -> None:
        small = [m for m in sizes if m < self.world_size]
        if small:
            raise ValueError(
                f"a batch of {small[0]} examples cannot be split over {self.world_size} "
                "processes (each needs at least one): choose a batch size whose last batch "
                f"(examples % batch size) is 0 or at least {self.world_size}, or drop_last=True"
            )

    def _tasks(self, epoch: int):
        for task in super()._tasks(epoch):
            self._check_sizes([task.stop - task.start if isinstance(task, slice) else len(task)])
            yield shard_of(task, self.rank, self.world_size)


def shard_dataset(data, rank: int, world_size: int):
    """Rank ``rank``'s consecutive part of a whole data set (to evaluate it in parts): of a pair
    ``(x, y)`` of arrays the same pair sliced, of a dataset a :class:`Subset`, of a DataLoader
    one over its dataset's part with the same batch size and collate function."""
    if isinstance(data, (tuple, list)):
        lo, hi = shard_bounds(len(data[0]), rank, world_size)
        return tuple(values[lo:hi] for values in data)
    if isinstance(data, DataLoader):
        part = shard_dataset(data.dataset, rank, world_size)
        return DataLoader(part, batch_size=data.batch_size or 1000, collate_fn=data.collate_fn)
    lo, hi = shard_bounds(len(data), rank, world_size)
    return Subset(data, range(lo, hi))
