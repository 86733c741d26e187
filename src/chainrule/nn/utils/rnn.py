"""Sequences of unequal lengths for the recurrent layers, as ``torch.nn.utils.rnn``.

``pad_sequence`` stacks sequences into one padded tensor; ``pack_padded_sequence`` keeps only the
steps each sequence has, time step by time step (a :class:`PackedSequence`), so that a recurrent
layer stops each sequence at its own end; ``pad_packed_sequence`` turns a packed sequence (a
layer's output) back into a padded tensor and the lengths. Every conversion is differentiable:
gradients flow back to the values it was made from.

Layout of a packed sequence (PyTorch's): the sequences sorted by decreasing length,
``data`` = the first step of every sequence, then the second step of those that have one, ...;
``batch_sizes[t]`` = how many sequences have a step t.
"""

from __future__ import annotations

from typing import NamedTuple

from ...api import pad, stack
from ...backend import xp
from ...tensor import Tensor, as_array


class PackedSequence(NamedTuple):
    """Sequences of unequal lengths packed step by step (see the module docstring).

    Attributes:
        data: the steps, (total steps, *features).
        batch_sizes: int64, how many sequences have each step (on the CPU, as PyTorch's).
        sorted_indices: the batch position of the longest sequence, the next, ... (None where
            the batch was already sorted: ``enforce_sorted=True``).
        unsorted_indices: the inverse: where each sequence of the batch went in the sorted order.
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> PackedSequence:
        """The same sequences with ``data.to(...)`` (a dtype; the device is always the CPU)."""
        return self._replace(data=self.data.to(*args, **kwargs))

    def double(self) -> PackedSequence:
        return self._replace(data=self.data.double())

    def float(self) -> PackedSequence:
        return self._replace(data=self.data.float())

    @property
    def is_cuda(self) -> bool:
        return False

    def positions(self) -> tuple:
        """(time step, batch position) of each row of ``data`` (see :func:`positions`)."""
        return positions(self.batch_sizes, self.sorted_indices)

    def lengths(self):
        """Each sequence's length, in the unsorted batch order (int64 array)."""
        _, batch = self.positions()
        return xp.bincount(batch, minlength=int(as_array(self.batch_sizes)[0])).astype(xp.int64)


def positions(batch_sizes, sorted_indices=None) -> tuple:
    """(time step, batch position) of each row of a packed sequence's ``data``, the batch
    positions in the unsorted batch's order: two int arrays of length ``sum(batch_sizes)``."""
    sizes = as_array(batch_sizes)
    order = xp.arange(sizes[0]) if sorted_indices is None else as_array(sorted_indices)
    steps = xp.repeat(xp.arange(len(sizes)), sizes)
    ranks = xp.concatenate([xp.arange(n) for n in sizes])
    return steps, order[ranks]


def _int64(values) -> Tensor:
    return Tensor._make(xp.asarray(values, dtype=xp.int64), False)


def pad_sequence(
    sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"
) -> Tensor:
    """Stack sequences of shapes (L_i, *) into one tensor (L_max, N, *) (or (N, L_max, *) with
    ``batch_first``), filling the missing steps with ``padding_value`` (after each sequence, or
    before it with ``padding_side='left'``)."""
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence needs at least one sequence")
    if padding_side not in ("right", "left"):
        raise ValueError(
            f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}"
        )
    tails = {tuple(s.shape[1:]) for s in sequences}
    if len(tails) > 1 or any(s.ndim == 0 for s in sequences):
        shapes = [tuple(s.shape) for s in sequences]
        raise ValueError(
            f"pad_sequence: sequences must be (L_i, *) with one * for all, got {shapes}"
        )
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - s.shape[0]
        steps = (0, missing) if padding_side == "right" else (missing, 0)
        padded.append(pad(s, [steps] + [(0, 0)] * (s.ndim - 1), value=padding_value))
    return stack(padded, dim=0 if batch_first else 1)


def _checked_lengths(lengths, batch: int, steps: int):
    lengths = xp.asarray(as_array(lengths))
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or len(lengths) != batch:
        raise ValueError(
            f"pack_padded_sequence: lengths must be {batch} integers (one per sequence), "
            f"got {lengths.tolist()!r:.60}"
        )
    if batch and (lengths.min() <= 0 or lengths.max() > steps):
        raise ValueError(
            f"pack_padded_sequence: every length must be in [1, {steps}] (the padded length), "
            f"got {lengths.tolist()!r:.60}"
        )
    return lengths.astype(xp.int64)


def pack_padded_sequence(
    input, lengths, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a padded batch (L, N, *) (or (N, L, *) with ``batch_first``) of sequences of the
    given ``lengths``. With ``enforce_sorted`` the lengths must be in decreasing order; pass
    ``enforce_sorted=False`` to have them sorted here (and put back in order by the layers)."""
    if batch_first:
        input = input.transpose(0, 1)
    if input.ndim < 2:
        raise ValueError(f"pack_padded_sequence needs (L, N, *) input, got {tuple(input.shape)}")
    lengths = _checked_lengths(lengths, input.shape[1], input.shape[0])
    if enforce_sorted:
        if xp.any(lengths[1:] > lengths[:-1]):
            raise ValueError(
                f"pack_padded_sequence: lengths {lengths.tolist()!r:.60} are not in decreasing "
                "order; sort the batch or pass enforce_sorted=False"
            )
        sorted_indices = unsorted_indices = None
    else:
        order = xp.argsort(-lengths, kind="stable")
        sorted_indices, unsorted_indices = _int64(order), _int64(xp.argsort(order))
    batch_sizes = (lengths[None, :] > xp.arange(lengths.max())[:, None]).sum(axis=1)
    steps, batch = positions(batch_sizes, sorted_indices)
    return PackedSequence(
        input[steps, batch], _int64(batch_sizes), sorted_indices, unsorted_indices
    )


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The padded batch (L, N, *) (or (N, L, *)) of a packed sequence, in the batch's original
    order, and the lengths (int64). ``total_length`` pads to that many steps instead of the
    longest sequence's."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(
            f"pad_packed_sequence needs a PackedSequence, got {type(sequence).__name__}"
        )
    steps, batch = sequence.positions()
    longest, size = len(as_array(sequence.batch_sizes)), int(as_array(sequence.batch_sizes)[0])
    if total_length is not None:
        if total_length < longest:
            raise ValueError(
                f"pad_packed_sequence: total_length={total_length} is shorter than the longest "
                f"sequence ({longest} steps)"
            )
        longest = total_length
    data = sequence.data
    # one more row holding the padding value: every missing step points at it
    with_padding = pad(data, [(0, 1)] + [(0, 0)] * (data.ndim - 1), value=padding_value)
    rows = xp.full((longest, size), len(data))
    rows[steps, batch] = xp.arange(len(data))
    padded = with_padding[rows]
    return (padded.transpose(0, 1) if batch_first else padded), _int64(sequence.lengths())


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *) (by decreasing length unless ``enforce_sorted=False``)."""
    sequences = list(sequences)
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False) -> list:
    """The sequences of a padded batch, each cut to its length: a list of (L_i, *)."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    lengths = as_array(lengths)
    return [padded_sequences[i, : int(n)] for i, n in enumerate(lengths)]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The sequences of a packed sequence, in the batch's original order: a list of (L_i, *)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
