"""The DataLoader: a dataset cut into (shuffled) mini-batches of tensors, as PyTorch's.

Its arguments, defaults and batches are those of ``torch.utils.data.DataLoader``; on top of them

* ``seed=``: the order of epoch ``e`` is drawn from ``(seed, e)`` alone, so it neither depends on
  nor disturbs any other random state, and ``loader.epoch(e, start_batch)`` replays any epoch from
  any batch: what ``fit`` uses to resume a run exactly;
* a dataset with ``dataset.batch(indices)`` (a :class:`TensorDataset`, a ``Subset`` of one, or a
  pair ``(x, y)`` of arrays) gets each batch with one indexing operation per array instead of one
  ``__getitem__`` call per example;
* ``num_workers=N`` loads batches in N threads, ahead of the training loop (``prefetch_factor``
  batches per worker). Reading files and decoding images release Python's lock, so threads
  overlap them; there are no worker processes to start or to copy the dataset into.

Random orders are reproducible from ``seed``, ``generator`` or ``cr.manual_seed``, but are not
the orders PyTorch draws from the same seed (its generator is a different algorithm).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..backend import new_rng, xp
from ..generator import Generator, stream
from ..tensor import Tensor
from .collate import default_collate, default_convert
from .dataset import TensorDataset, fetches_batches
from .sampler import (
    BatchSampler,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

# Samplers whose blocks() are exactly what iterating them gives (a subclass may change __iter__).
_ORDER_SAMPLERS = (SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler)


@dataclass
class WorkerInfo:
    """What :func:`get_worker_info` tells code running in a worker thread."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_worker = threading.local()


def get_worker_info() -> WorkerInfo | None:
    """The worker this code runs in (inside ``dataset[i]`` or ``worker_init_fn``), else None."""
    return getattr(_worker, "info", None)


class DataLoader:
    """Mini-batches of a dataset, as tensors.

    Args:
        dataset: a map-style dataset (``len`` and ``dataset[i]``), e.g. a
            :class:`TensorDataset`; a tuple ``(x, y)`` of arrays is taken as
            ``TensorDataset(x, y)``.
        batch_size: examples per batch; ``None`` turns batching off (each step gives one
            example, its arrays made tensors), as in PyTorch.
        shuffle: a new order every epoch.
        sampler, batch_sampler: the order of examples, or of whole batches, as PyTorch's.
        num_workers: threads that load batches ahead of the loop (0: load in the loop).
        collate_fn: makes a batch from a list of examples (default :func:`default_collate`).
        pin_memory, pin_memory_device: accepted; nothing to pin on the CPU.
        drop_last: skip a last, smaller batch.
        timeout: seconds to wait for a worker's batch before giving up (0: forever).
        worker_init_fn: called with the worker's id in each worker thread as it starts.
        multiprocessing_context, in_order: accepted; workers are threads, batches come in order.
        generator: where shuffling draws from (default: the global generator).
        prefetch_factor: batches loaded ahead per worker (default 2 with workers).
        persistent_workers: keep the worker threads from one epoch to the next.
        seed: shuffle epoch ``e`` from ``(seed, e)`` only (chainrule's: exact resume).

    Iterating twice gives two epochs; ``loader.epoch(e)`` gives the batches of epoch ``e``.

    Example:
        >>> loader = DataLoader(TensorDataset(images, labels), batch_size=64, shuffle=True)
        >>> for x, y in loader:
        ...     loss = loss_fn(model(x), y)
    """

    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable | None = None,
        multiprocessing_context=None,
        generator: Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        seed: int | None = None,
    ):
        if isinstance(dataset, tuple):
            dataset = TensorDataset(*dataset)
        _check_workers(num_workers, timeout, prefetch_factor, persistent_workers)
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, "
                    "sampler and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError(
                "DataLoader: batch_size=None turns batching off and is mutually exclusive "
                "with drop_last"
            )
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: pass seed= or generator=, not both")
        if sampler is None and shuffle:
            sampler = RandomSampler(dataset, generator=generator)
        elif sampler is None:
            sampler = SequentialSampler(dataset)
        self._default_batches = batch_sampler is None and batch_size is not None
        if self._default_batches:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.timeout, self.worker_init_fn = num_workers, timeout, worker_init_fn
        if prefetch_factor is None and num_workers:
            prefetch_factor = 2
        self.prefetch_factor = prefetch_factor
        self.persistent_workers, self.pin_memory = persistent_workers, pin_memory
        self.pin_memory_device, self.in_order = pin_memory_device, in_order
        self.multiprocessing_context = multiprocessing_context
        auto = batch_sampler is not None
        self.collate_fn = collate_fn or (default_collate if auto else default_convert)
        self._fast = auto and self.collate_fn is default_collate and fetches_batches(dataset)
        self.seed = seed
        self._seeded = seed is not None and shuffle
        self._epochs_started = 0
        self._pool = None

    def __len__(self) -> int:
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self) -> Iterator:
        epoch, self._epochs_started = self._epochs_started, self._epochs_started + 1
        return self.epoch(epoch)

    def _blocks(self, epoch: int) -> Iterator | None:
        """The example order of ``epoch`` (default samplers only): None for 0, 1, 2, ..., else
        index arrays, one after the other (see ``Sampler.blocks``).

        With ``seed`` it depends on ``(seed, epoch)`` only; otherwise each call draws a new order
        from the sampler (its generator, or the global one), as PyTorch does every epoch.
        """
        if self._seeded:
            return iter([new_rng([self.seed, epoch]).permutation(len(self.dataset))])
        if type(self.sampler) is SequentialSampler:
            return None
        return self.sampler.blocks()

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator:
        """The batches of ``epoch`` from ``start_batch`` on."""
        tasks = self._tasks(epoch)
        if start_batch:
            tasks = itertools.islice(tasks, start_batch, None)
        if self.num_workers:
            return self._prefetched(tasks, epoch)
        return map(self._fetch, tasks)

    # -- which examples each step loads --------------------------------------------------------
    def _tasks(self, epoch: int) -> Iterator:
        """Per step: an index (batching off), a slice or index array, or a list of indices."""
        if self.batch_sampler is None:
            return iter(self.sampler)
        if not (self._default_batches and type(self.sampler) in _ORDER_SAMPLERS):
            return iter(self.batch_sampler)
        blocks, size = self._blocks(epoch), self.batch_size
        if blocks is None:
            n = len(self.dataset)
            count = n // size if self.drop_last else -(-n // size)
            return (slice(lo, min(lo + size, n)) for lo in range(0, count * size, size))
        return _batches(blocks, size, self.drop_last)

    def _fetch(self, task):
        if self.batch_sampler is None:
            return self.collate_fn(self.dataset[task])
        if self._fast:
            return [Tensor._make(a, False) for a in self.dataset.batch(_as_index(task))]
        if isinstance(task, slice):
            indices = list(range(task.start, task.stop))
        else:
            indices = task.tolist() if isinstance(task, xp.ndarray) else list(task)
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.collate_fn(self.dataset.__getitems__(indices))
        return self.collate_fn([self.dataset[i] for i in indices])

    # -- worker threads --------------------------------------------------------------------------
    def _prefetched(self, tasks: Iterator, epoch: int) -> Iterator:
        """Batches loaded by the worker threads, ``prefetch_factor`` per worker ahead, in order."""
        pool = self._pool or self._start_workers(epoch)
        self._pool = pool if self.persistent_workers else None
        pending: deque = deque()
        ahead = max(1, self.num_workers * self.prefetch_factor)
        try:
            for task in itertools.islice(tasks, ahead):
                pending.append(pool.submit(self._fetch, task))
            while pending:
                future = pending.popleft()
                try:
                    batch = future.result(timeout=self.timeout or None)
                except concurrent.futures.TimeoutError:
                    raise RuntimeError(
                        f"DataLoader timed out after {self.timeout} seconds waiting for a batch"
                    ) from None
                for task in itertools.islice(tasks, 1):
                    pending.append(pool.submit(self._fetch, task))
                yield batch
        finally:
            for future in pending:
                future.cancel()
            if not self.persistent_workers:
                pool.shutdown(wait=False, cancel_futures=True)

    def _start_workers(self, epoch: int) -> concurrent.futures.ThreadPoolExecutor:
        ids = itertools.count()
        seed = self.seed if self.seed is not None else int(stream(self.generator).integers(2**62))
        base_seed = seed + epoch

        def start_worker():
            worker_id = next(ids)
            _worker.info = WorkerInfo(
                worker_id, self.num_workers, base_seed + worker_id, self.dataset
            )
            if self.worker_init_fn is not None:
                self.worker_init_fn(worker_id)

        return concurrent.futures.ThreadPoolExecutor(
            self.num_workers, thread_name_prefix="DataLoader-worker", initializer=start_worker
        )


def _batches(blocks: Iterator, size: int, drop_last: bool) -> Iterator:
    """Index arrays of ``size`` cut from a stream of index arrays (a batch may straddle two
    blocks), the last one shorter unless ``drop_last``."""
    pieces, count = [], 0
    for block in blocks:
        while len(block):
            piece, block = block[: size - count], block[size - count :]
            pieces.append(piece)
            count += len(piece)
            if count == size:
                yield pieces[0] if len(pieces) == 1 else xp.concatenate(pieces)
                pieces, count = [], 0
    if count and not drop_last:
        yield xp.concatenate(pieces)


def _as_index(task):
    return task if isinstance(task, (slice, xp.ndarray)) else xp.asarray(task, dtype=xp.int64)


def _check_workers(num_workers, timeout, prefetch_factor, persistent_workers) -> None:
    if num_workers < 0:
        raise ValueError(
            "DataLoader: num_workers must be >= 0 (use num_workers=0 to load in the main thread)"
        )
    if timeout < 0:
        raise ValueError("DataLoader: timeout must be >= 0")
    if prefetch_factor is not None and (num_workers == 0 or prefetch_factor < 0):
        raise ValueError(
            "DataLoader: prefetch_factor needs num_workers > 0 and must be >= 0 "
            f"(got prefetch_factor={prefetch_factor}, num_workers={num_workers})"
        )
    if persistent_workers and num_workers == 0:
        raise ValueError("DataLoader: persistent_workers needs num_workers > 0")
