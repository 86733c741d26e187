"""Data-parallel training over many processes and machines, with MPI (mpi4py), as ChainerMN and
Horovod do.

Every process holds the whole model and takes its share of every batch; after backward the
gradients are averaged over all processes (one in-place ``Allreduce`` per flat gradient array),
so every process takes the same step and the model is the one a single process would have
trained on the whole batches. Install with ``pip install 'chainrule[mpi]'`` and start with
``mpiexec -n 4 chainrule train ...`` or ``mpiexec -n 4 python train.py``.

In a script::

    import chainrule.distributed as dist

    comm = dist.init()          # MPI when started by mpiexec -n N (N > 1), else this process
    fit(model, loss_fn, optimizer, (x, y), batch_size=256, comm=comm)   # 256 / N per rank

or, in a loop of one's own (the shape of ChainerMN)::

    dist.broadcast_training_state(model, optimizer)     # rank 0's weights everywhere
    for x, y in dist.ShardedLoader(loader, dist.rank(), dist.world_size()):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        dist.allreduce_mean_grads(optimizer, len(x))   # the gradient of the whole batch
        optimizer.step()

See docs/distributed.md for what is measured, what it costs, and the rules (rank 0 alone
writes, batch norm statistics, failures).
"""

from __future__ import annotations

from .batchnorm import SyncBatchNorm, convert_sync_batchnorm
from .mpi import MPIComm, abort_job, init, launched_size, started, threads_per_process
from .shard import ShardedLoader, shard_bounds, shard_dataset
from .state import check_identical as _check_identical
from .state import differences


def rank() -> int:
    """This process's number, 0 to ``world_size() - 1`` (0 without MPI)."""
    return init().rank


def world_size() -> int:
    """How many processes train together (1 without MPI)."""
    return init().world_size


def is_distributed() -> bool:
    """Whether this process is one of several (started by ``mpiexec -n N``, N > 1)."""
    return init().world_size > 1


def barrier() -> None:
    """Wait until every process has come here."""
    init().barrier()


def broadcast(tensor, src: int = 0):
    """Overwrite ``tensor`` (a tensor or array) on every process with rank ``src``'s, in place."""
    return init().broadcast(tensor, src)


def all_reduce(tensor, op: str = "sum"):
    """Replace ``tensor`` on every process by its ``sum`` (``mean``, ``max``, ``min``, ``prod``)
    over all processes, in place."""
    return init().all_reduce(tensor, op)


def broadcast_training_state(model, optimizer) -> None:
    """Give every process rank 0's parameters, buffers and optimizer state."""
    init().start(model, optimizer)


def check_identical(model, optimizer) -> None:
    """Raise RuntimeError on every process unless the weights and optimizer state are
    bit-identical on all of them."""
    _check_identical(init(), model, optimizer)


def allreduce_mean_grads(optimizer, count: int = 1) -> None:
    """Average the gradients of ``optimizer``'s parameters over all processes, weighted by
    ``count`` (the examples this process's loss is the mean of); between backward and step."""
    init().allreduce_mean_grads(optimizer, count)


__all__ = [
    "MPIComm",
    "ShardedLoader",
    "SyncBatchNorm",
    "abort_job",
    "all_reduce",
    "allreduce_mean_grads",
    "barrier",
    "broadcast",
    "broadcast_training_state",
    "check_identical",
    "convert_sync_batchnorm",
    "differences",
    "init",
    "is_distributed",
    "launched_size",
    "rank",
    "shard_bounds",
    "shard_dataset",
    "started",
    "threads_per_process",
    "world_size",
]
