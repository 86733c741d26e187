"""The array backend: the one core module that imports NumPy.

Everything else asks this module for the array module ``xp``, the random generators and the
few NumPy specifics (strided views, unbuffered adds, float-error states), so that a later GPU
backend (CuPy) changes one file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

xp = np
"""The array module every op computes with."""

ndarray = np.ndarray


class Generator:
    """A stream of random numbers that can be seeded for reproducible results (PyTorch's
    ``torch.Generator``; the numbers themselves differ from PyTorch's, which uses another
    algorithm).

    Example:
        >>> g = cr.Generator().manual_seed(0)
        >>> cr.randn(3, generator=g)
    """

    device = "cpu"

    def __init__(self, device: str = "cpu"):
        if str(device) != "cpu":
            raise RuntimeError(f"Generator: device {device!r} is not available; use 'cpu'")
        self.seed()

    def manual_seed(self, seed: int) -> Generator:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"manual_seed expects an integer, got {seed!r}")
        self._seed = int(seed) % 2**64  # negative seeds wrap around, as PyTorch's
        self.np = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy; returns the seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy) % 2**63)
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """The generator's full state (a dict of plain values), for ``set_state``."""
        return self.np.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        self.np.bit_generator.state = state
        return self


default_generator = Generator()
"""The generator behind ``randn``, ``rand``, initialisation and dropout."""


def manual_seed(seed: int) -> Generator:
    """Seed chainrule's default generator (used by ``randn``, ``rand``, init, dropout)."""
    return default_generator.manual_seed(seed)


def rng() -> np.random.Generator:
    """The NumPy generator behind the default generator seeded by :func:`manual_seed`."""
    return default_generator.np


def generator_of(generator: Generator | None) -> np.random.Generator:
    """The NumPy generator of ``generator``, or of the default one."""
    return (generator or default_generator).np


@contextlib.contextmanager
def fork_rng() -> Iterator[None]:
    """Run a block with the default generator's state saved and restored afterwards."""
    previous = default_generator.np
    forked = np.random.Generator(type(previous.bit_generator)())
    forked.bit_generator.state = previous.bit_generator.state
    default_generator.np = forked
    try:
        yield
    finally:
        default_generator.np = previous


def set_num_threads(n: int) -> None:
    """Limit the BLAS behind NumPy (matrix products) to ``n`` threads, via threadpoolctl."""
    from threadpoolctl import threadpool_limits

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads expects a positive integer, got {n!r}")
    threadpool_limits(n)


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    Training allocates and frees the same large temporaries every step; by default glibc hands
    them back and faults them in again, which can cost as much as the arithmetic (see
    PERF-NOTES). Process-wide, so only the command line calls it. Returns False where it is not
    available (not glibc).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
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


def to_numpy(array) -> np.ndarray:
    """Return a NumPy array (a no-op for the NumPy backend)."""
    return np.asarray(array)
