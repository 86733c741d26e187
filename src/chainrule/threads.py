"""Split a minibatch across a small thread pool.

NumPy releases the GIL inside its loops and BLAS calls, so two Python threads working on two
halves of a batch keep two cores busy: the patch copies, scatter-adds and pooling loops that
BLAS's own threads never touch run in parallel too. The pool has as many threads as the BLAS
behind NumPy is allowed (``chainrule.set_num_threads`` / ``--threads``; by default the idle
cores, see :mod:`.cores`); while the pool runs,
that BLAS is limited to one thread per worker, so the cores are never oversubscribed.

The batch is cut into chunks of about :attr:`Policy.chunk_bytes` of working set (e.g. patch
matrix), small enough that a chunk's patches are still in cache when the matrix product reads
them, a multiple of :attr:`Policy.min_chunks` of them. The workers take the chunks one by one
from a shared counter: when another program holds one of the cores, the threads that do run
take the chunks the stalled one would have had (a fixed half per thread would make the whole
step wait for it). The chunks depend only on the batch and the policy, never on the threads,
and ``work`` gets each chunk's index: sums over the batch are kept per chunk and added up in
chunk order, so results are the same for any number of threads and any schedule.

:func:`elementwise` runs work that treats each element on its own (ReLU, the optimizers' update
rules) the same way, on matching pieces of flat arrays in place of examples.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Policy:
    """How a batch is split. ``threads=None`` follows the BLAS thread setting.

    Attributes:
        threads: worker threads (None: as many as BLAS may use).
        chunk_bytes: the working set of one chunk (e.g. its patch matrix); a few MiB stay in
            the L2/L3 cache between the patch copy and the matrix product.
        min_chunks: the number of chunks is a multiple of this (if the batch has as many
            examples): with two, the two threads of a 2-core machine get equal shares, and
            either takes the other's chunk when that one is held up. More, smaller chunks
            measured slower (each NumPy call in a chunk contends for Python's lock).
        min_parallel_bytes: below this much work in all, one thread does it: the two threads'
            many small NumPy calls then contend for Python's lock more than they gain (LeNet's
            second max pool, 0.8 MiB: 0.37 ms on one thread, 0.55 ms on two; its first, 2.3 MiB:
            1.76 ms on one, 1.36 ms on two).
        min_elementwise_bytes: the same for :func:`elementwise`: below it, one call. Its passes
            over memory gain only on large arrays (the MNIST example net's biggest ReLU, 28 MiB
            in all: 0.88 ms on one thread, 0.51 on two), and cost elsewhere (the Adam step of
            MLP 784-256-128-10, 4.7 MiB: split, its batch-32 training step took 680 us, not 596).
    """

    threads: int | None = None
    chunk_bytes: int = 4 << 20
    min_chunks: int = 2
    min_parallel_bytes: int = 2 << 20
    min_elementwise_bytes: int = 8 << 20


_policy = Policy()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()  # one parallel section at a time; others run inline
_blas = None
_pool_threads: int | None = None  # None: as many as BLAS may use


def current_policy() -> Policy:
    return _policy


@contextlib.contextmanager
def policy(**changes) -> Iterator[Policy]:
    """Run a block with some :class:`Policy` fields changed (tests, benchmarks of the levers)."""
    global _policy
    previous = _policy
    _policy = replace(previous, **changes)
    try:
        yield _policy
    finally:
        _policy = previous


def _blas_libraries() -> list:
    """threadpoolctl's handles on the BLAS libraries NumPy uses (found once, then cached)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        numpy_own = [lib for lib in libraries if "numpy" in lib.filepath]
        _blas = numpy_own or libraries
    return _blas


def blas_threads() -> int:
    """How many threads NumPy's BLAS may use now (what ``set_num_threads`` set)."""
    return max((lib.num_threads for lib in _blas_libraries()), default=1)


def set_blas_threads(n: int, pool: int | None = None) -> None:
    """Let NumPy's BLAS use ``n`` threads and the batch splitting ``pool`` (None: ``n``) (see
    :mod:`.cores`, which decides both)."""
    global _pool_threads
    _pool_threads = pool
    for lib in _blas_libraries():
        lib.set_num_threads(n)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """NumPy's BLAS on one thread for the block, then as before: for the pool's workers, and for
    runs of small products (a small recurrent layer's steps, see ``ops.rnn``) where a second
    BLAS thread mostly waits: on a busy 2-core machine 35 steps of 20 x 650 times 650 x 2600
    took 2.1 s with two threads against 0.2 s with one."""
    libraries = _blas_libraries()
    previous = [lib.num_threads for lib in libraries]
    if all(n == 1 for n in previous):  # already (a pool worker, a nested block): nothing to do
        yield
        return
    for lib in libraries:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libraries, previous):
            lib.set_num_threads(n)


def _forget_pool_in_child() -> None:
    """A forked child has none of the parent's pool threads: start afresh there (an inherited
    executor would take work and never run it)."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)


def _executor(workers: int) -> ThreadPoolExecutor:
    """The pool, with ``workers - 1`` threads (the calling thread is worker 0)."""
    global _pool, _pool_size
    if _pool is None or _pool_size != workers:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="chainrule-batch")
        _pool_size = workers
    return _pool


def worker_count(n: int, total_bytes: int) -> int:
    """Threads to use for ``n`` examples and ``total_bytes`` of work under the current policy."""
    threads = _policy.threads or _pool_threads or blas_threads()
    if total_bytes < _policy.min_parallel_bytes:
        return 1
    return max(1, min(threads, n))


def chunks(n: int, bytes_per_example: int) -> list[tuple[int, int]]:
    """The (start, stop) chunks that cover examples ``0..n`` under the current policy: as few
    as fit the cache, a multiple of ``min_chunks`` of them, sizes within one example."""
    by_cache = max(1, _policy.chunk_bytes // max(bytes_per_example, 1))
    count = -(-n // by_cache)  # ceiling division
    count = min(n, -(-count // _policy.min_chunks) * _policy.min_chunks)
    return [(n * k // count, n * (k + 1) // count) for k in range(count)]


class _Progress:
    """Counts finished chunks and keeps the first error, for the thread that waits for them."""

    def __init__(self, total: int):
        self.left = total
        self.error: BaseException | None = None
        self.finished = threading.Condition()

    def done(self, error: BaseException | None) -> None:
        with self.finished:
            self.left -= 1
            self.error = self.error or error
            if self.left == 0:
                self.finished.notify_all()

    def wait(self) -> None:
        with self.finished:
            self.finished.wait_for(lambda: self.left == 0)
        if self.error is not None:
            raise self.error


def split_batch(work: Callable[[int, int, int], None], n: int, bytes_per_example: int) -> int:
    """Call ``work(start, stop, chunk)`` for every chunk of examples ``0..n`` (see :func:`chunks`).

    ``chunk`` is the chunk's index. ``work`` must only write to its own examples' slices of the
    outputs, or to accumulators indexed by ``chunk`` (to be added up in chunk order). Returns
    the number of threads used.
    """
    parts = chunks(n, bytes_per_example)
    workers = min(worker_count(n, n * bytes_per_example), len(parts))
    if workers == 1 or not _pool_lock.acquire(blocking=False):
        for index, (start, stop) in enumerate(parts):  # inline; also when the pool is busy
            work(start, stop, index)
        return 1
    try:
        taken = itertools.count()  # next() on it is atomic under the GIL: each index once
        progress = _Progress(len(parts))

        def take_chunks() -> None:
            while (index := next(taken)) < len(parts):
                try:
                    work(*parts[index], index)
                except BaseException as error:  # handed to the waiting thread
                    progress.done(error)
                else:
                    progress.done(None)

        with single_threaded_blas():
            for _ in range(workers - 1):
                _executor(workers).submit(take_chunks)
            take_chunks()
            # wait for the chunks, not for the threads: one that never got a core took none
            progress.wait()
    finally:
        _pool_lock.release()
    return workers


def elementwise(function: Callable, *arrays, **constants) -> None:
    """``function(*arrays, **constants)``, run on matching pieces of the arrays over the pool
    when the first array's bytes times the number of arrays reach ``min_elementwise_bytes``
    (then each piece is a "chunk" as above).

    For functions that treat every element on its own and write their results into the arrays
    they are given (ReLU's passes, the optimizers' update rules): each element then sees the
    same operations in the same order, so the result is that of one call, bit for bit. The
    arrays (a ``None`` is passed on as it is) must share one shape and one layout in memory,
    contiguous up to an order of the axes (e.g. the (N, C, H, W) view of channels-last
    images); otherwise, and for small work, it is one call.
    """
    if not worth_splitting(arrays[0].nbytes * len(arrays)):  # the common, small case
        function(*arrays, **constants)
        return
    flat = _flat_in_memory_order(arrays)
    if flat is None:
        function(*arrays, **constants)
        return

    def work(start, stop, chunk):
        function(*(None if f is None else f[start:stop] for f in flat), **constants)

    size = arrays[0].size
    split_batch(work, size, sum(a.nbytes for a in arrays if a is not None) // max(size, 1))


def by_rows(function: Callable, *arrays, axis: int = -1) -> None:
    """``function(*arrays, axis=axis)``, run on matching blocks of rows when ``axis`` is the last
    one: each row (the last axis) stays whole, so row-wise work (a softmax, a layer norm) gives
    the same result for any blocks. A block's rows fit in cache, so the function's several
    passes over them read cache rather than memory; big work is spread over the pool. Arrays
    of other shapes or layouts, and another ``axis``, take one call. ``None`` passes as it is.
    """
    first = arrays[0]
    width = first.shape[-1] if first.ndim else 0
    if (
        axis not in (-1, first.ndim - 1)
        or not width
        or not all(a is None or (a.shape == first.shape and a.flags.c_contiguous) for a in arrays)
    ):
        function(*arrays, axis=axis)
        return
    flat = [None if a is None else a.reshape(-1, width) for a in arrays]
    row_bytes = sum(f[0].nbytes for f in flat if f is not None)

    def work(start, stop, chunk):
        function(*(None if f is None else f[start:stop] for f in flat), axis=-1)

    split_batch(work, len(flat[0]), row_bytes)


def worth_splitting(elementwise_bytes: int) -> bool:
    """Whether :func:`elementwise` cuts work over this many bytes into pieces (so that an op can
    keep its plain one-line form for small arrays, where every microsecond counts)."""
    return elementwise_bytes >= _policy.min_elementwise_bytes


def _flat_in_memory_order(arrays) -> list | None:
    """1-D views of the arrays (None stays None), element k of each being the k-th in the first
    one's memory order; None unless all have the same shape and are contiguous in that order."""
    first = arrays[0]
    order = sorted(range(first.ndim), key=lambda axis: -abs(first.strides[axis]))
    present = [a for a in arrays if a is not None]
    if any(a.shape != first.shape or not a.transpose(order).flags.c_contiguous for a in present):
        return None
    return [None if a is None else a.transpose(order).reshape(-1) for a in arrays]
