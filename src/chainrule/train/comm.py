"""The processes a training run spans, as ``fit`` sees them: by default just this one.

``fit`` talks to its processes through a small communicator: make them start alike, give each its
share of the data, average the gradients between backward and step, sum the metrics. On one
process every one of these is the identity, which is what :class:`SingleProcess` does.
:class:`chainrule.distributed.MPIComm` spans the processes of an MPI job and overrides each method
with the collective that does it (see :mod:`chainrule.distributed`).
"""

from __future__ import annotations


class SingleProcess:
    """The communicator of a one-process run: nothing to share, every collective a no-op."""

    rank = 0
    world_size = 1
    local_size = 1  # processes on this machine

    def barrier(self) -> None:
        """Wait for every process: there is no other."""

    def broadcast(self, tensor, src: int = 0):
        """Rank ``src``'s ``tensor`` on every process: this one's."""
        return tensor

    def all_reduce(self, tensor, op: str = "sum"):
        """``tensor`` reduced over the processes: itself."""
        return tensor

    def shard(self, loader):
        """This process's part of every batch of ``loader``: all of it."""
        return loader

    def shard_data(self, data):
        """This process's part of a data set to evaluate: all of it."""
        return data

    def start(self, model, optimizer, plan: dict | None = None) -> None:
        """Make weights, buffers and optimizer state identical everywhere, after checking that
        every process holds the same ``plan`` (epochs, batches, examples): they do."""

    def allreduce_mean_grads(self, optimizer, count: int) -> None:
        """Average the gradients over the processes: one process's gradient is the average."""

    def sum(self, values: tuple) -> tuple:
        """Sum numbers over the processes."""
        return tuple(values)

    def end_epoch(self, model, optimizer) -> None:
        """Give every process rank 0's buffers and check the weights agree: one process does."""
