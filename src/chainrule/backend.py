"""The array backend: the one core module that imports NumPy.

Everything else asks this module for the array module ``xp``, the random generators and the
few NumPy specifics (strided views, unbuffered adds, float-error states); a test keeps those
specifics here.

What a GPU backend (CuPy) would still need beyond this file, stated so no one takes the seam for
more than it is: ``xp`` is imported at module load and means host NumPy everywhere (the ops,
the engine, the optimizers' flat buffers, the thread pool): each would have to ask for the array
module of its inputs instead (``cupy.get_array_module``); the fast convolution, pooling and
batch-norm paths (``ops/*_fast.py``, the thread pool in :mod:`chainrule.threads`) are written
for CPU caches and BLAS threads and would need GPU counterparts; scipy (erf), safetensors'
NumPy reader, the data loaders and everything that hands arrays to Matplotlib, ONNX or MPI
expect host arrays, so a device array would be copied at those edges.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator

import numpy as np

xp = np
"""The array module every op computes with."""

ndarray = np.ndarray


DEFAULT_SEED = 67280421310721
"""The seed the global stream starts from (PyTorch's, so ``cr.initial_seed()`` agrees)."""

_global_rng = np.random.default_rng(DEFAULT_SEED)
_global_seed = DEFAULT_SEED
_thread = threading.local()  # a thread's own stream while it uses one (use_rng)


def check_seed(seed) -> int:
    """``seed`` as PyTorch takes it: an integer in [-2^63, 2^64), a negative one counting from 2^64."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expects an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"manual_seed: {seed} is outside [-2^63, 2^64)")
    return seed % 2**64


def manual_seed(seed: int) -> None:
    """Seed the global stream (used by ``randn``, ``rand``, init, dropout, shuffling)."""
    set_rng(np.random.default_rng(check_seed(seed)), check_seed(seed))


def rng() -> np.random.Generator:
    """The random stream: the global one seeded by :func:`manual_seed`, or this thread's own
    inside :func:`use_rng`."""
    own = getattr(_thread, "rng", None)
    return _global_rng if own is None else own


@contextlib.contextmanager
def use_rng(generator: np.random.Generator) -> Iterator[None]:
    """Draw from ``generator`` in this thread for the block; other threads keep drawing from
    theirs. A server training several models at once gives each its own stream this way, so
    that each run repeats, without a lock that would make them take turns."""
    previous = getattr(_thread, "rng", None)
    _thread.rng = generator
    try:
        yield
    finally:
        _thread.rng = previous


def initial_seed() -> int:
    return _global_seed


def set_rng(generator: np.random.Generator, seed: int | None = None) -> None:
    """Make ``generator`` the global stream (``seed``: the seed it started from, if known)."""
    global _global_rng, _global_seed
    _global_rng = generator
    if seed is not None:
        _global_seed = seed


@contextlib.contextmanager
def fork_rng() -> Iterator[None]:
    """Run a block with the global stream's state saved and restored afterwards."""
    global _global_rng
    previous = _global_rng
    forked = np.random.Generator(type(previous.bit_generator)())
    forked.bit_generator.state = previous.bit_generator.state
    _global_rng = forked
    try:
        yield
    finally:
        _global_rng = previous


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    Training allocates and frees the same large temporaries every step; by default glibc hands
    them back and faults them in again, which can cost as much as the arithmetic (see
    PERF-NOTES). Process-wide: ``import chainrule`` calls it once, so a program written for
    PyTorch gets it without an environment variable. Freed memory then stays with the process
    for reuse (handed back only when more than 2 GiB lies free at the top of the heap); the
    peak does not grow. Returns False where it is not available (not glibc).
    """
    import ctypes

    try:  # the symbols the process has loaded (libc's among them): no library search at import
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return bool(
        mallopt(m_trim_threshold, 2**31 - 1)
        and mallopt(m_top_pad, 64 << 20)
        and mallopt(m_mmap_threshold, 32 << 20)
    )


def erf(x):
    """The error function, elementwise (keeps float32 as float32).

    scipy is imported on first use: it takes most of a second, and only GELU needs it.
    """
    from scipy.special import erf as scipy_erf

    return scipy_erf(x)


def new_rng(seed=None) -> np.random.Generator:
    """A fresh generator of its own (not the global one), e.g. for a reproducible data set."""
    return np.random.default_rng(seed)


def as_strided(array, shape: tuple, strides: tuple):
    """A read-only strided view of ``array`` (no copy): how convolution windows are read."""
    return np.lib.stride_tricks.as_strided(array, shape, strides, writeable=False)


def add_at(target, index, values) -> None:
    """``target[index] += values`` where repeated indices add up (unbuffered, ``np.add.at``)."""
    np.add.at(target, index, values)


def ignore_float_errors(**which):
    """Context manager that silences floating-point warnings (``divide``, ``invalid``, ...),
    all of them when none is named."""
    return np.errstate(**(which or {"all": "ignore"}))


# -- memory ------------------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes of memory this process can still use: the kernel's MemAvailable, lowered by a
    cgroup (container) limit if there is one; None where neither can be read."""
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read())
        if limit != "max":
            left = int(limit) - used
            free = left if free is None else min(free, left)
    except (OSError, ValueError):
        pass
    if free is None and hasattr(os, "sysconf"):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            pass
    return free


def check_fits(shape: tuple, dtype, what: str) -> None:
    """Raise MemoryError naming ``what`` if an array of ``shape`` would not fit in the free
    memory (a layer from a file may ask for an output no machine holds)."""
    needed = math.prod(shape) * np.dtype(dtype).itemsize
    free = available_memory()
    if free is not None and needed > free:
        raise MemoryError(
            f"{what}: its output of shape {tuple(shape)} needs {needed / 2**30:,.1f} GiB, more "
            f"than the {free / 2**30:,.1f} GiB free"
        )
