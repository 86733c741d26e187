"""Scenarios of data-parallel training, run under ``mpiexec`` by tests/test_distributed.py.

``mpiexec -n N python tests/distributed_worker.py OUT.json SCENARIO...``: every rank trains with
``fit(..., comm=dist.init())``, then trains the same model again in this process alone (no
communicator: the one-process run) and compares. Rank 0 writes what was found to OUT.json; the
test asserts on it. Scenarios ``raise`` and ``die`` make rank 1 fail part-way instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import chainrule as cr
import chainrule.distributed as dist
from chainrule import nn, optim
from chainrule.tensor import as_array
from chainrule.train import Callback, ModelCheckpoint, evaluate, fit

STEPS_PER_EPOCH, BATCH = 25, 25  # 24 batches of 25 and a last one of 10: remainders for any N


def digits(dtype, images: bool):
    x, y = cr.data.load_digits()
    x = cr.data.scale(x).astype(dtype)
    x = x[:, None] if images else x.reshape(len(x), -1)
    n = (STEPS_PER_EPOCH - 1) * BATCH + 10
    return (x[:n], y[:n]), (x[n : n + 300], y[n : n + 300])


def build(kind: str, dtype):
    cr.manual_seed(0)
    if kind == "mlp":
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    elif kind == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 10),
        )
    else:  # "bn": a CNN with batch norm
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 10),
        )
    return model.double() if dtype == "float64" else model


def train(kind, dtype, optimizer, comm, sync_bn=False, epochs=2, callbacks=(), resume=None):
    """50 steps (2 epochs) of ``kind``; returns (model, optimizer, history)."""
    model = build(kind, dtype)
    trained = dist.convert_sync_batchnorm(model, comm) if sync_bn else model
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train_data, val = digits(dtype, images=kind != "mlp")
    history = fit(
        trained,
        nn.CrossEntropyLoss(),
        opt,
        train_data,
        epochs=epochs,
        batch_size=BATCH,
        validation_data=val,
        seed=0,
        progress=False,
        comm=comm,
        callbacks=callbacks,
        resume=resume,
    )
    return model, opt, history


def largest_relative_difference(a, b) -> float:
    """max |a - b| / max |b| over every tensor of ``a`` and its namesake in ``b``."""
    worst = 0.0
    for name, value in a.items():
        ours, theirs = as_array(value).astype(np.float64), as_array(b[name]).astype(np.float64)
        worst = max(worst, float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30)))
    return worst


def identical_on_all_ranks(comm, model) -> bool:
    """Whether every rank holds the very bytes rank 0 holds (parameters and buffers)."""
    mine = [as_array(v).tobytes().hex() for v in model.state_dict().values()]
    same = mine == comm.broadcast_json(mine)
    return comm.sum((not same,))[0] == 0


def equivalence(comm, kind, dtype, optimizer, sync_bn=False) -> dict:
    model, opt, history = train(kind, dtype, optimizer, comm, sync_bn)
    alone, _, alone_history = train(kind, dtype, optimizer, None, sync_bn=False)
    params = {k: v for k, v in model.state_dict().items() if "running" not in k}
    reference = {k: v for k, v in alone.state_dict().items() if "running" not in k}
    buffers = {k: v for k, v in model.state_dict().items() if "running" in k}
    return {
        "steps": opt.step_count,
        "weights": largest_relative_difference(params, reference),
        "buffers": largest_relative_difference(buffers, alone.state_dict()) if buffers else 0.0,
        "val_loss": max(
            abs(a - b) / abs(b) for a, b in zip(history["val_loss"], alone_history["val_loss"])
        ),
        "loss": max(abs(a - b) / abs(b) for a, b in zip(history["loss"], alone_history["loss"])),
        "identical_on_all_ranks": identical_on_all_ranks(comm, model),
    }


def different_start(comm) -> dict:
    """Ranks other than 0 start from other weights, buffers and optimizer state: fit gives them
    rank 0's, and trains the one-process model (batch norm synchronised, to be comparable; SGD,
    as Adam would magnify the rounding noise in the conv bias, which batch norm makes moot)."""
    model = build("bn", "float32")
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if comm.rank > 0:
        for value in model.state_dict().values():
            as_array(value)[...] += comm.rank
        for p in model.parameters():
            p.grad = cr.ones_like(p)
        opt.step()  # momentum and a step count rank 0 does not have
    train_data, val = digits("float32", images=True)
    fit(dist.convert_sync_batchnorm(model, comm), nn.CrossEntropyLoss(), opt, train_data,
        epochs=2, batch_size=BATCH, validation_data=val, seed=0, progress=False, comm=comm)  # fmt: skip
    alone, _, _ = train("bn", "float32", "sgd", None)
    return {
        "steps": opt.step_count,
        "identical_on_all_ranks": identical_on_all_ranks(comm, model),
        "weights": largest_relative_difference(model.state_dict(), alone.state_dict()),
    }


class Nudge(Callback):
    """Rank 1 changes one weight a little at its third batch: the copies are no longer equal."""

    def on_batch_end(self, run, logs, batch_size):
        if dist.rank() == 1 and run.batch == 2:
            as_array(next(run.model.parameters()))[0] += 1e-6


def diverged(comm) -> dict:
    """The end-of-epoch check notices, and every rank raises the same error."""
    try:
        train("mlp", "float32", "sgd", comm, callbacks=[Nudge()])
    except RuntimeError as exc:
        return {"error": str(exc)}
    return {"error": None}


def different_batches(comm) -> dict:
    """Rank 1 asks fit for batches of 20, the others for 25: a hang before the plans were
    compared (rank 1's epoch had more batches); now every rank raises the same error."""
    model = build("mlp", "float32")
    train_data, _ = digits("float32", images=False)
    try:
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05), train_data,
            batch_size=20 if comm.rank == 1 else BATCH, progress=False, comm=comm)  # fmt: skip
    except RuntimeError as exc:
        return {"error": str(exc)}
    return {"error": None}


def resume(comm, folder: Path) -> dict:
    """One epoch with a checkpoint (rank 0 writes it), then a second from it on every rank: the
    same weights, bit for bit, as two epochs without a break."""
    whole, _, _ = train("bn", "float32", "adam", comm)
    path = folder / "checkpoint.safetensors"
    writer = [ModelCheckpoint(path)] if comm.rank == 0 else []
    train("bn", "float32", "adam", comm, epochs=1, callbacks=writer)
    comm.barrier()  # the checkpoint is written before anyone reads it
    resumed, _, _ = train("bn", "float32", "adam", comm, resume=ModelCheckpoint.load(path))
    ours, theirs = resumed.state_dict(), whole.state_dict()
    return {
        "bit_identical": all(np.array_equal(as_array(ours[k]), as_array(theirs[k])) for k in ours),
        "identical_on_all_ranks": identical_on_all_ranks(comm, resumed),
    }


class FailAt(Callback):
    """Rank 1 raises (or dies) at its third batch, noting the time first."""

    def __init__(self, how: str, note: Path):
        self.how, self.note = how, note

    def on_batch_end(self, run, logs, batch_size):
        if dist.rank() == 1 and run.batch == 2:
            self.note.write_text(repr(time.time()))
            if self.how == "die":
                os._exit(3)
            raise ValueError("rank 1 found something wrong in its batch")


def fail(comm, how: str, note: Path) -> None:
    model = build("mlp", "float32")
    opt = optim.SGD(model.parameters(), lr=0.05)
    train_data, _ = digits("float32", images=False)
    fit(model, nn.CrossEntropyLoss(), opt, train_data, epochs=100, batch_size=BATCH, seed=0,
        progress=False, callbacks=[FailAt(how, note)], comm=comm)  # fmt: skip


def evaluate_uneven(comm, out: Path) -> None:
    """Every rank evaluates a set whose shards make different numbers of batches (rank 0's one
    more: 3 x N x 10 + 1 examples, batches of 10), for classes and for a regression whose targets
    sit far from 0; each rank writes its largest relative difference from the one-process
    numbers to OUT.rank<R>.json (no collective after the one under test)."""
    batch = 10
    (x, y), _ = digits("float64", images=False)
    n = 3 * comm.world_size * batch + 1
    x, y = x[:n], y[:n]
    model = build("mlp", "float64")
    cases = {
        "classes": (nn.CrossEntropyLoss(), y, None),
        "regression": (nn.MSELoss(), np.eye(10)[y] * 3.0 + 1000.0, 2.0),
    }
    found = {}
    for name, (loss, target, std) in cases.items():
        ours = evaluate(model, loss, (x, target), batch, target_std=std, comm=comm)
        alone = evaluate(model, loss, (x, target), batch, target_std=std)
        assert ours.keys() == alone.keys()
        found[name] = max(abs(ours[k] - alone[k]) / abs(alone[k]) for k in alone)
    out.with_suffix(f".rank{comm.rank}.json").write_text(json.dumps(found))


SCENARIOS = {
    "mlp-float32-adam": lambda c: equivalence(c, "mlp", "float32", "adam"),
    "mlp-float64-adam": lambda c: equivalence(c, "mlp", "float64", "adam"),
    "cnn-float32-sgd": lambda c: equivalence(c, "cnn", "float32", "sgd"),
    "cnn-float64-sgd": lambda c: equivalence(c, "cnn", "float64", "sgd"),
    "bn-per-rank": lambda c: equivalence(c, "bn", "float32", "sgd"),
    "bn-sync-float64": lambda c: equivalence(c, "bn", "float64", "sgd", sync_bn=True),
}


def main() -> None:
    cr.set_num_threads(1)
    out, names = Path(sys.argv[1]), sys.argv[2:]
    comm = dist.init()
    results = {"world_size": comm.world_size}
    for name in names:
        if name in ("raise", "die"):
            fail(comm, name, out.with_suffix(".failed_at"))
        elif name == "resume":
            results[name] = resume(comm, out.parent)
        elif name == "different-start":
            results[name] = different_start(comm)
        elif name == "diverged":
            results[name] = diverged(comm)
        elif name == "different-batches":
            results[name] = different_batches(comm)
        elif name == "evaluate-uneven":
            evaluate_uneven(comm, out)
        else:
            results[name] = SCENARIOS[name](comm)
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
