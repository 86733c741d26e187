"""The array backend: the one core module that imports NumPy.

Everything else asks this module for the array module ``xp``, the default float dtype and the
random generator, so that a later GPU backend (CuPy) changes one file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from scipy.special import erf as _scipy_erf

xp = np
"""The array module every op computes with."""

ndarray = np.ndarray
DEFAULT_FLOAT = np.dtype(np.float32)

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed chainrule's global random generator (used by ``randn``, ``rand``, init, dropout)."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed expects a non-negative integer, got {seed!r}")
    _rng = np.random.default_rng(int(seed))


def rng() -> np.random.Generator:
    """The global random generator seeded by :func:`manual_seed`."""
    return _rng


@contextlib.contextmanager
def fork_rng() -> Iterator[None]:
    """Run a block with the global generator's state saved and restored afterwards."""
    global _rng
    previous = _rng
    _rng = np.random.Generator(type(previous.bit_generator)())
    _rng.bit_generator.state = previous.bit_generator.state
    try:
        yield
    finally:
        _rng = previous


def erf(x):
    """The error function, elementwise (keeps float32 as float32)."""
    return _scipy_erf(x)


def as_dtype(dtype) -> np.dtype | None:
    """Normalise a dtype spelling (``'float32'``, ``np.float64``, ``cr.float64``) or None."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"unknown dtype {dtype!r}") from exc


def is_float(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


def to_numpy(array) -> np.ndarray:
    """Return a NumPy array (a no-op for the NumPy backend)."""
    return np.asarray(array)
