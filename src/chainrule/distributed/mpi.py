"""The processes of an MPI job (mpi4py over a real MPI) and the collectives training uses.

:func:`init` looks at the environment a launcher (``mpiexec``, ``srun``) gives each process; when
it says there are several, it starts MPI through mpi4py and returns an :class:`MPIComm` over all of
them, else a one-process communicator, without importing mpi4py at all. Everything sent is an
array passed in place (``Bcast``, ``Allreduce``) or JSON text: nothing is pickled.

When one process fails (an exception nothing caught), :func:`abort_job` prints which rank failed
and why, then calls ``MPI_Abort``: the launcher stops every other process within a moment, instead
of leaving them waiting forever in their next collective.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from ..backend import xp
from ..tensor import as_array
from ..train.comm import SingleProcess
from . import state
from .shard import ShardedLoader, shard_dataset

# How launchers tell a process the size of its job: Open MPI, MPICH / Intel MPI / Slurm (PMI),
# MVAPICH. One of them above 1 means "started as one of several processes".
WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
REDUCE_OPS = ("sum", "mean", "max", "min", "prod")

_current = None


def launched_size() -> int:
    """The number of processes the launcher says this job has (1 without a launcher)."""
    for name in WORLD_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def init():
    """The processes of this job: an :class:`MPIComm` when started by an MPI launcher with more
    than one process, else a one-process communicator. Called again, returns the same one.

    Raises ImportError, saying what to install, when a launcher started several processes but
    mpi4py is missing (each would otherwise train alone and write the same files).
    """
    global _current
    if _current is not None:
        return _current
    size = launched_size()
    if size == 1:
        _current = SingleProcess()
        return _current
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError(
            f"started as one of {size} MPI processes, but mpi4py is not installed: "
            "pip install 'chainrule[mpi]' (mpi4py and Open MPI)"
        ) from None
    world = MPI.COMM_WORLD
    _current = MPIComm(world, MPI) if world.Get_size() > 1 else SingleProcess()
    if _current.world_size > 1:
        sys.excepthook = _abort_on_uncaught
    return _current


def started() -> bool:
    """Whether :func:`init` has started MPI in this process (one of several); starts nothing."""
    return isinstance(_current, MPIComm)


def threads_per_process(comm) -> int:
    """BLAS threads for each process: the cores this one may use, shared among the processes on
    its machine (more threads than cores would make them wait for each other)."""
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return max(1, min(usable, cores // comm.local_size))


def _abort_on_uncaught(kind, exc, tb) -> None:
    traceback.print_exception(kind, exc, tb)
    abort_job(f"{kind.__name__}: {exc}", status=1)


def abort_job(message: str, status: int = 1) -> None:
    """Say which rank failed and why, then stop every process of the job (``MPI_Abort``)."""
    comm = _current
    if not isinstance(comm, MPIComm):
        raise SystemExit(status)
    print(
        f"chainrule: rank {comm.rank} of {comm.world_size} failed: {message}; stopping all "
        f"{comm.world_size} processes",
        file=sys.stderr,
        flush=True,
    )
    comm.mpi.Abort(status)


class MPIComm(SingleProcess):
    """All the processes of an MPI job: the collectives on arrays, and what ``fit`` needs.

    Args:
        mpi_comm: an mpi4py communicator (``MPI.COMM_WORLD``).
        MPI: the ``mpi4py.MPI`` module (its constants: ``IN_PLACE``, ``SUM``, ...).
    """

    def __init__(self, mpi_comm, MPI):
        self.mpi, self.MPI = mpi_comm, MPI
        self.rank, self.world_size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        local = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED)  # the processes on this machine
        self.local_size = local.Get_size()
        local.Free()

    def __repr__(self) -> str:
        return f"MPIComm(rank={self.rank}, world_size={self.world_size})"

    # -- collectives ---------------------------------------------------------------------------
    def barrier(self) -> None:
        """Wait until every process has come here."""
        self.mpi.Barrier()

    def broadcast(self, tensor, src: int = 0):
        """Overwrite ``tensor`` (a tensor or array) with rank ``src``'s, in place; returns it."""
        array = _contiguous(tensor)
        self.mpi.Bcast(array, root=src)
        return tensor

    def all_reduce(self, tensor, op: str = "sum"):
        """Replace ``tensor`` (a tensor or array) everywhere by its sum (or ``mean``, ``max``,
        ``min``, ``prod``) over all processes, in place; returns it."""
        if op not in REDUCE_OPS:
            raise ValueError(f"all_reduce: op must be one of {', '.join(REDUCE_OPS)}, got {op!r}")
        array = _contiguous(tensor)
        mpi_op = {"mean": self.MPI.SUM}.get(op) or getattr(self.MPI, op.upper())
        self.mpi.Allreduce(self.MPI.IN_PLACE, array, op=mpi_op)
        if op == "mean":
            array /= self.world_size
        return tensor

    def sum(self, values: tuple) -> tuple:
        """Sum a few numbers over all processes (float64)."""
        totals = xp.asarray(values, dtype=xp.float64)
        self.mpi.Allreduce(self.MPI.IN_PLACE, totals, op=self.MPI.SUM)
        return tuple(totals.tolist())

    def broadcast_json(self, value, src: int = 0):
        """Rank ``src``'s ``value`` (anything JSON can hold) on every process."""
        text = json.dumps(value).encode() if self.rank == src else b""
        length = xp.asarray([len(text)], dtype=xp.int64)
        self.mpi.Bcast(length, root=src)
        buffer = bytearray(text) if self.rank == src else bytearray(int(length[0]))
        self.mpi.Bcast(buffer, root=src)
        return json.loads(buffer.decode())

    # -- what fit needs --------------------------------------------------------------------------
    def shard(self, loader):
        return ShardedLoader(loader, self.rank, self.world_size)

    def shard_data(self, data):
        return shard_dataset(data, self.rank, self.world_size)

    def start(self, model, optimizer, plan: dict | None = None) -> None:
        """Every process takes rank 0's weights, buffers and optimizer state (after checking that
        all of them hold the same model and optimizer, and the same ``plan``: processes that
        would run different numbers of batches pair their collectives wrongly, or hang)."""
        if plan is not None:
            state.check_same(self, plan, "the processes' training plans")
        state.broadcast_model(self, model)
        state.broadcast_optimizer(self, optimizer)

    def allreduce_mean_grads(self, optimizer, count: int) -> None:
        """Make every gradient the average over all processes, weighted by how many examples each
        saw (``count`` here): g = sum_r (n_r / B) g_r, which is the one-process gradient of the
        mean loss over the whole batch. One in-place ``Allreduce`` per flat gradient array
        (one per parameter group)."""
        (total,) = self.sum((count,))
        weight = count / total
        for flat in optimizer.gather_gradients():
            if weight != 1:
                flat *= weight
            self.mpi.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)

    def end_epoch(self, model, optimizer) -> None:
        """Give every process rank 0's buffers (batch-norm running statistics, as PyTorch's DDP)
        and check that weights and optimizer state are bit-identical everywhere."""
        for buffer in model.buffers():
            self.broadcast(buffer)
        state.check_identical(self, model, optimizer)


def _contiguous(tensor):
    array = as_array(tensor)
    if not array.flags.c_contiguous:
        raise ValueError(
            f"MPI collectives work in place on contiguous arrays; got one of shape {array.shape} "
            "that is a strided view (pass .contiguous() or a copy)"
        )
    return array
