"""Random generators with a state of their own, as ``torch.Generator``.

A :class:`Generator` makes a random stream reproducible without touching the global one that
``cr.manual_seed`` seeds: ``random_split(data, [0.8, 0.2], generator=cr.Generator().manual_seed(0))``
gives the same split every time. Its numbers are not PyTorch's (a different algorithm, NumPy's
PCG64, draws them), only its interface is.
"""

from __future__ import annotations

import os

from .backend import new_rng, rng, xp
from .tensor import Tensor, as_array

DEFAULT_SEED = 67280421310721
"""The seed a new generator starts from (PyTorch's, so ``initial_seed()`` agrees)."""

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
        if isinstance(seed, bool) or not isinstance(seed, (int, xp.integer)):
            raise TypeError(f"manual_seed expects an integer, got {type(seed).__name__}")
        seed = int(seed)
        if not -(2**63) <= seed < 2**64:
            raise ValueError(f"manual_seed: {seed} is outside [-2^63, 2^64)")
        self._initial_seed = seed % 2**64
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


def stream(generator: Generator | None):
    """The random stream of ``generator``, or the global one that ``cr.manual_seed`` seeds when
    there is none (so that shuffling without a generator is reproducible too)."""
    if generator is None:
        return rng()
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a cr.Generator, got {type(generator).__name__}")
    return generator.rng
