"""Samplers as in ``torch.utils.data``: which examples an epoch visits, in which order.

Iterating a sampler gives example indices (a batch sampler gives lists of them). The samplers
here also give an epoch's indices as a few arrays (``blocks()``), which lets the DataLoader cut
batches by slicing instead of one Python step per index. A block is at most one permutation of
the data (which a shuffle must hold anyway) or ``DRAWS_PER_BLOCK`` draws with replacement, so a
pass of ``num_samples=int(1e10)`` (makemore's "infinite" loader) is drawn lazily, as PyTorch
does, instead of holding 80 GB of indices up front. Random orders come from
the sampler's ``generator``, or from the global generator seeded by ``cr.manual_seed``; they are
reproducible from the seed, but they are not the orders PyTorch draws (different generators).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sized
from typing import Generic, TypeVar

from ..backend import xp
from ..generator import Generator, stream
from ..tensor import as_array

T_co = TypeVar("T_co", covariant=True)

DRAWS_PER_BLOCK = 1024
"""Indices drawn with replacement at a time: a lazy pass, at a few kB per block."""


class Sampler(Generic[T_co]):
    """Base class: subclasses define ``__iter__`` (indices) and usually ``__len__``."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized):
        self.data_source = data_source

    def blocks(self) -> Iterator:
        yield xp.arange(len(self.data_source))

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A new random order every pass: a permutation, or ``num_samples`` draws with replacement.

    Args:
        data_source: what to sample from (only its length is used).
        replacement: draw with replacement.
        num_samples: how many indices per pass (default ``len(data_source)``); more than the
            length without replacement chains several permutations.
        generator: where the randomness comes from (default: the global generator).
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
    ):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        self.data_source, self.replacement = data_source, replacement
        self._num_samples, self.generator = num_samples, generator
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                f"RandomSampler: num_samples must be a positive integer, got {self.num_samples!r}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def blocks(self) -> Iterator:
        """One pass's indices, a block at a time: ``DRAWS_PER_BLOCK`` draws with replacement,
        else one permutation of the data per block (the last one cut to ``num_samples``)."""
        rng, n = stream(self.generator), len(self.data_source)
        for size in _block_sizes(self.num_samples, DRAWS_PER_BLOCK if self.replacement else n):
            yield rng.integers(0, n, size=size) if self.replacement else rng.permutation(n)[:size]

    def __iter__(self) -> Iterator[int]:
        return _indices(self.blocks())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given ``indices`` in a new random order every pass."""

    def __init__(self, indices, generator: Generator | None = None):
        self.indices, self.generator = indices, generator

    def blocks(self) -> Iterator:
        yield xp.asarray(self.indices)[stream(self.generator).permutation(len(self.indices))]

    def __iter__(self) -> Iterator[int]:
        return _indices(self.blocks())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices drawn with probability proportional to ``weights``."""

    def __init__(
        self,
        weights,
        num_samples: int,
        replacement: bool = True,
        generator: Generator | None = None,
    ):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(
                f"WeightedRandomSampler: num_samples must be a positive integer, got {num_samples!r}"
            )
        weights = xp.asarray(as_array(weights), dtype=xp.float64)
        if weights.ndim != 1 or (weights < 0).any() or not weights.sum() > 0:
            raise ValueError(
                "WeightedRandomSampler: weights must be a 1-D sequence of non-negative numbers "
                f"with a positive sum, got shape {weights.shape}"
            )
        if not replacement and num_samples > (weights > 0).sum():
            raise ValueError(
                f"WeightedRandomSampler: cannot draw {num_samples} distinct indices from "
                f"{int((weights > 0).sum())} with a non-zero weight"
            )
        self.weights, self.num_samples = weights, num_samples
        self.replacement, self.generator = replacement, generator

    def blocks(self) -> Iterator:
        """Without replacement one block (at most the number of weights); with replacement
        ``DRAWS_PER_BLOCK`` at a time, by inverting the cumulative weights as NumPy's ``choice``
        does, so the indices are those one ``choice`` call of the whole pass would draw."""
        rng, p = stream(self.generator), self.weights / self.weights.sum()
        if not self.replacement:
            yield rng.choice(len(p), size=self.num_samples, replace=False, p=p)
            return
        cdf = p.cumsum()
        cdf /= cdf[-1]
        for size in _block_sizes(self.num_samples, DRAWS_PER_BLOCK):
            yield cdf.searchsorted(rng.random(size), side="right")

    def __iter__(self) -> Iterator[int]:
        return _indices(self.blocks())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter,
    unless ``drop_last``)."""

    def __init__(self, sampler: Sampler | Iterable, batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last must be a bool, got {drop_last!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self) -> Iterator[list]:
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def _block_sizes(total: int, block: int) -> Iterator[int]:
    """``block, block, ..., rest``: sizes that add up to ``total``."""
    for start in range(0, total, block):
        yield min(block, total - start)


def _indices(blocks: Iterable) -> Iterator[int]:
    for block in blocks:
        yield from block.tolist()
