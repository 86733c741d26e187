"""Random generators with a state of their own, as ``torch.Generator``.

A :class:`Generator` makes a random stream reproducible without touching the global one that
``cr.manual_seed`` seeds: ``random_split(data, [0.8, 0.2], generator=cr.Generator().manual_seed(0))``
gives the same split every time. Its numbers are not PyTorch's (a different algorithm, NumPy's
PCG64, draws them), only its interface is.
"""

from __future__ import annotations

import os

from . import backend
from .backend import DEFAULT_SEED, check_seed, new_rng, xp
from .tensor import Tensor, as_array

_STATE_BYTES = (16, 16, 1, 4, 8)  # PCG64 state, increment, has_uint32, uinteger, initial seed


class Generator:
    """A random number generator that owns its state.

    Args:
        device: only ``"cpu"`` exists.

    Example:
        >>> g = cr.Generator().manual_seed(42)
        >>> train, val = cr.utils.data.random_split(range(10), [0.8, 0.2], generator=g)
    """

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise RuntimeError(f"Generator: device {device!r} does not exist (only 'cpu' does)")
        self.device = "cpu"
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from ``seed`` (an integer in [-2^63, 2^64); a negative one counts
        from 2^64, as in PyTorch). Returns the generator, so that it can be made in one line."""
        self._initial_seed = check_seed(seed)
        self.rng = new_rng(self._initial_seed)
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy (not reproducible); returns the seed."""
        seed = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        """The seed the stream started from."""
        return self._initial_seed

    def get_state(self) -> Tensor:
        """The whole state as a uint8 tensor, for :meth:`set_state`."""
        state = self.rng.bit_generator.state
        numbers = (
            state["state"]["state"],
            state["state"]["inc"],
            state["has_uint32"],
            state["uinteger"],
            self._initial_seed,
        )
        raw = b"".join(n.to_bytes(size, "little") for n, size in zip(numbers, _STATE_BYTES))
        return Tensor._make(xp.frombuffer(raw, dtype=xp.uint8).copy(), False)

    def set_state(self, new_state) -> Generator:
        """Restore a state returned by :meth:`get_state`."""
        array = as_array(new_state)
        if array.dtype != xp.uint8 or array.shape != (sum(_STATE_BYTES),):
            raise ValueError(
                f"Generator.set_state expects the uint8 tensor of {sum(_STATE_BYTES)} values "
                f"that get_state() returns, got dtype {array.dtype} and shape {array.shape}"
            )
        raw, numbers = array.tobytes(), []
        for size in _STATE_BYTES:
            numbers.append(int.from_bytes(raw[:size], "little"))
            raw = raw[size:]
        state, inc, has_uint32, uinteger, initial_seed = numbers
        rng = new_rng(0)
        rng.bit_generator.state = {
            "bit_generator": type(rng.bit_generator).__name__,
            "state": {"state": state, "inc": inc},
            "has_uint32": has_uint32,
            "uinteger": uinteger,
        }
        self.rng, self._initial_seed = rng, initial_seed
        return self

    def __repr__(self) -> str:
        return f"Generator(initial_seed={self._initial_seed})"


class _DefaultGenerator(Generator):
    """The generator behind ``cr.manual_seed``: its stream is the backend's global one."""

    @property
    def rng(self):
        return backend.rng()

    @rng.setter
    def rng(self, value) -> None:
        backend.set_rng(value)

    @property
    def _initial_seed(self) -> int:
        return backend.initial_seed()

    @_initial_seed.setter
    def _initial_seed(self, seed: int) -> None:
        backend.set_rng(backend.rng(), seed)


default_generator = _DefaultGenerator()
"""The global generator (``randn``, ``rand``, init, dropout, shuffling without a generator)."""


def manual_seed(seed: int) -> Generator:
    """Seed the global generator; returns it (as PyTorch's ``torch.manual_seed``)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator from the operating system's entropy; returns the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    default_generator.set_state(new_state)


def stream(generator: Generator | None):
    """The random stream of ``generator``, or the global one that ``cr.manual_seed`` seeds when
    there is none (so that shuffling without a generator is reproducible too)."""
    if generator is None:
        return backend.rng()
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a cr.Generator, got {type(generator).__name__}")
    return generator.rng
