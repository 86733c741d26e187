"""Keeping the processes' copies of the model and optimizer identical.

* :func:`broadcast_model` and :func:`broadcast_optimizer`: at the start, every process takes rank
  0's parameters, buffers and optimizer state (after checking that all hold the same shapes);
* :func:`differences`: which settings (any JSON values) differ from rank 0's, and where;
* :func:`check_identical`: afterwards the copies stay identical by construction (same start, same
  averaged gradients, same update rule); this checks it, bit for bit, by comparing digests.

A problem found on some ranks is agreed on by all of them (one small ``Allreduce``), so that every
process raises the same error instead of some waiting for the others forever.
"""

from __future__ import annotations

import hashlib
import json

from ..backend import xp
from ..tensor import as_array


def _describe(array) -> list:
    return [list(array.shape), str(array.dtype)]


def agree(comm, problem: str | None, what: str) -> None:
    """Raise the same RuntimeError on every process if ``problem`` is set on any of them."""
    flags = xp.zeros(comm.world_size, dtype=xp.int64)
    flags[comm.rank] = problem is not None
    comm.all_reduce(flags)
    if flags.any():
        ranks = ", ".join(str(r) for r in xp.flatnonzero(flags).tolist())
        detail = f": {problem}" if problem else ""
        raise RuntimeError(f"{what} of rank(s) {ranks} differ from rank 0's{detail}")


def differences(comm, mine: dict) -> tuple[dict, dict]:
    """Compare every process's ``mine`` (JSON values) with rank 0's, in one broadcast and one
    ``Allreduce``: returns ``({key: [ranks whose value differs]}, rank 0's dict)``, the same on
    every process, so that all can refuse together, naming the keys and the ranks."""
    mine = json.loads(json.dumps(mine))  # tuples as lists, as rank 0's arrive
    theirs = comm.broadcast_json(mine)
    keys = sorted(theirs)
    flags = xp.zeros((comm.world_size, len(keys)), dtype=xp.int64)
    flags[comm.rank] = [mine.get(key) != theirs[key] for key in keys]
    comm.all_reduce(flags)
    differ = {
        key: xp.flatnonzero(flags[:, k]).tolist() for k, key in enumerate(keys) if flags[:, k].any()
    }
    return differ, theirs


def check_same(comm, mine: dict, what: str) -> None:
    """Raise the same RuntimeError on every process, naming each key and the ranks where it
    differs from rank 0's, unless every process holds the same ``mine``."""
    differ, theirs = differences(comm, mine)
    if differ:
        said = "; ".join(
            f"{key} on rank(s) {', '.join(map(str, ranks))} (rank 0: {theirs[key]})"
            for key, ranks in differ.items()
        )
        raise RuntimeError(f"{what} differ from rank 0's: {said}")


def first_difference(mine: dict, theirs: dict) -> str | None:
    """The first key whose value differs, said as 'key' is X here, Y on rank 0."""
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            return (
                f"'{key}' is {mine.get(key, 'absent')} here, {theirs.get(key, 'absent')} on rank 0"
            )
    return None


def broadcast_model(comm, model) -> None:
    """Overwrite every process's parameters and buffers with rank 0's, in place."""
    entries = model.state_dict()
    mine = {name: _describe(as_array(value)) for name, value in entries.items()}
    theirs = comm.broadcast_json(mine)
    agree(comm, first_difference(mine, theirs), "the models")
    for value in entries.values():
        comm.broadcast(value)


def broadcast_optimizer(comm, optimizer) -> None:
    """Give every process rank 0's optimizer state (moments, step counts)."""
    layout = {str(i): _describe(p._data) for i, p in enumerate(optimizer.parameters())}
    agree(comm, first_difference(layout, comm.broadcast_json(layout)), "the optimizers")
    saved = optimizer.state_dict()
    skeleton = {
        "step_count": saved["step_count"],
        "state": {
            str(index): {
                name: _describe(value) if isinstance(value, xp.ndarray) else value
                for name, value in entry.items()
            }
            for index, entry in saved["state"].items()
        },
    }
    skeleton = comm.broadcast_json(skeleton)
    received = {}
    for index, entry in skeleton["state"].items():
        received[int(index)] = {}
        for name, value in entry.items():
            if isinstance(value, list):  # an array: [shape, dtype]
                array = saved["state"][int(index)][name] if comm.rank == 0 else None
                if array is None:
                    array = xp.empty(value[0], dtype=value[1])
                value = comm.broadcast(array)
            received[int(index)][name] = value
    if comm.rank != 0:
        optimizer.load_state_dict(
            {
                "state": received,
                "param_groups": saved["param_groups"],
                "step_count": skeleton["step_count"],
            }
        )


def _digest(array) -> str:
    return hashlib.blake2b(xp.ascontiguousarray(array).data, digest_size=16).hexdigest()


def digests(model, optimizer) -> dict:
    """A digest of every parameter and optimizer state array, and the optimizer's step count."""
    found = {f"model.{name}": _digest(p._data) for name, p in model.named_parameters()}
    for index, entry in optimizer.state.items():
        for name, value in entry.items():
            key = f"optimizer.{index}.{name}"
            found[key] = _digest(value) if isinstance(value, xp.ndarray) else value
    found["optimizer.step_count"] = optimizer.step_count
    return found


def check_identical(comm, model, optimizer) -> None:
    """Raise RuntimeError on every process unless weights and optimizer state are bit-identical
    on all of them."""
    mine = digests(model, optimizer)
    agree(comm, first_difference(mine, comm.broadcast_json(mine)), "the weights")
