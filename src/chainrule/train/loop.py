"""The fit loop: batch -> forward -> loss -> zero_grad -> backward -> (all-reduce) -> step ->
metrics -> callbacks.

Everything optional (progress bar, early stopping, checkpoints, schedules, NaN guard, CSV log) is a
callback, so the data path below reads on one screen. Training over several processes (MPI) goes
through ``comm`` (see :mod:`.comm`): on one process each of its calls does nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import autograd, backend
from ..backend import xp
from ..data.loader import DataLoader, TensorDataset
from ..data.transforms import check_finite
from ..files import DataError
from ..nn.losses import BCELoss
from ..tensor import Tensor, as_array
from . import metrics as M
from .callbacks import CallbackList, ProgressBar
from .comm import SingleProcess


class ResumeError(ValueError):
    """A saved training state that does not fit the run it should continue."""


class History:
    """Per-epoch logs: ``history["loss"]``, ``history["val_accuracy"]``, ..."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows: list[dict] = list(rows or [])

    def append(self, logs: dict) -> None:
        self.rows.append(dict(logs))

    def __getitem__(self, key: str) -> list:
        return [row.get(key) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def keys(self) -> list[str]:
        seen: dict = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def overfitting(self, rise: float = 0.05, floor: float = 0.01, tail: int = 3) -> dict | None:
        """Whether the validation loss has turned upward for good: its lowest came before the
        last quarter of the epochs (and at least ``tail`` epochs before the end), and the mean
        of the last ``tail`` epochs lies more than ``rise`` (relative) and ``floor`` (absolute)
        above it. The network then learns its training examples rather than what generalises.
        A noisy last epoch or two does not count. Returns {"best_epoch", "best", "last"}
        (epochs counted from 1), or None (no validation loss, or no such rise)."""
        losses = [loss for loss in self["val_loss"] if loss is not None]
        if len(losses) != len(self) or len(losses) <= tail:
            return None
        best_epoch = min(range(len(losses)), key=losses.__getitem__) + 1
        best, recent = losses[best_epoch - 1], sum(losses[-tail:]) / tail
        if len(losses) - best_epoch < max(tail, len(losses) // 4):
            return None
        if not recent > best + max(rise * abs(best), floor):
            return None
        return {"best_epoch": best_epoch, "best": best, "last": losses[-1]}

    def to_csv(self) -> str:
        keys = self.keys
        lines = [",".join(keys)]
        for row in self.rows:
            lines.append(",".join("" if row.get(k) is None else f"{row[k]:.6g}" for k in keys))
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"History({len(self.rows)} epochs, keys={self.keys})"


class EpochMetrics:
    """Running sums over an epoch: mean loss and accuracy weighted by batch size; for a
    regression (``target_std`` given) MSE, RMSE, MAE and R^2 instead of accuracy.

    With a ``comm`` of several processes each update sums the batch's numbers over all of them,
    so that every process sees (and every callback decides on) the numbers of the whole batch.
    """

    def __init__(
        self, threshold: float, with_accuracy: bool, target_std: float | None = None, comm=None
    ):
        self.threshold, self.with_accuracy = threshold, with_accuracy and target_std is None
        self.target_std = target_std
        self.comm = comm or SingleProcess()
        self.regression = M.RegressionSums(target_std) if target_std is not None else None
        self.loss_sum = self.correct = 0.0
        self.count = self.last_count = 0
        self.last_loss = float("nan")  # the last batch's loss

    def update(self, loss: float, output, target) -> dict:
        n = len(output)
        correct = M.accuracy(output, target, self.threshold) * n if self.with_accuracy else 0.0
        loss_sum, correct, n = self.comm.sum((loss * n, correct, n))
        self.loss_sum += loss_sum
        self.correct += correct
        self.count += int(n)
        self.last_count, self.last_loss = int(n), loss
        if self.regression is not None:
            if self.regression.count == 0:  # one shift for every process: the first batch's mean
                total, count = self.comm.sum(self.regression.first_batch(target))
                self.regression.shift = total / max(count, 1)
            self.regression.add(self.comm.sum(self.regression.batch_sums(output, target)))
        return self.result()

    def result(self) -> dict:
        logs = {"loss": self.loss_sum / max(self.count, 1)}
        if self.with_accuracy:
            logs["accuracy"] = self.correct / max(self.count, 1)
        if self.regression is not None:
            logs.update(self.regression.result())
        return logs

    def total_over(self, comm) -> None:
        """Replace this process's sums (kept with no ``comm``) by the sums over every process of
        ``comm``, in one collective, however many batches each process added: per-batch sums
        would pair one process's batch with another's next collective where their counts
        differ, and hang."""
        own = [self.loss_sum, self.correct, self.count]
        if self.regression is not None:
            own += self.regression.moments()
        slots = [0.0] * (len(own) * comm.world_size)  # each process fills its own row
        slots[comm.rank * len(own) : (comm.rank + 1) * len(own)] = own
        rows = xp.asarray(comm.sum(tuple(slots))).reshape(comm.world_size, len(own))
        self.loss_sum, self.correct = float(rows[:, 0].sum()), float(rows[:, 1].sum())
        self.count = int(rows[:, 2].sum())
        if self.regression is not None:
            self.regression.merge(rows[:, 3:])

    def fresh(self) -> EpochMetrics:
        """Empty sums for the next epoch, counting the same things."""
        return EpochMetrics(self.threshold, self.with_accuracy, self.target_std, self.comm)

    def state_dict(self) -> dict:
        state = {"loss_sum": self.loss_sum, "correct": self.correct, "count": self.count}
        if self.regression is not None:
            state["regression"] = self.regression.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.loss_sum, self.correct, self.count = (
            state["loss_sum"],
            state["correct"],
            state["count"],
        )
        if self.regression is not None:
            self.regression.load_state_dict(state["regression"])


@dataclass
class Run:
    """What callbacks can see and steer during ``fit``."""

    model: object
    loss_fn: object
    optimizer: object
    epochs: int
    steps_per_epoch: int
    samples_per_epoch: int
    history: History
    epoch: int = 0
    batch: int = 0
    stop_training: bool = False
    metrics: EpochMetrics | None = None
    callbacks: object = None

    def state_dict(self, next_batch: int) -> dict:
        """Everything needed to continue training exactly from ``next_batch`` of this epoch:
        weights, optimizer, position, random state, history, callbacks."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "next_batch": next_batch,
            "steps_per_epoch": self.steps_per_epoch,
            "samples_per_epoch": self.samples_per_epoch,
            "rng": backend.rng().bit_generator.state,
            "history": self.history.rows,
            "epoch_metrics": self.metrics.state_dict(),
            "callbacks": self.callbacks.state_dict(),
        }

    def load_state_dict(self, state: dict) -> int:
        """Load what :meth:`state_dict` saved; returns the batch to continue from.

        Raises ResumeError naming what does not fit this run (a model of other shapes, another
        amount of data per epoch, a malformed part), checked before anything is changed where
        it can be.
        """
        check_state_fits(
            state,
            self.model,
            self.optimizer,
            self.epochs,
            self.steps_per_epoch,
            self.samples_per_epoch,
        )
        try:  # the state comes from a file: whatever still does not fit is its fault
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            backend.rng().bit_generator.state = state["rng"]
            self.callbacks.load_state_dict(state["callbacks"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ResumeError(f"the training state does not fit this run ({exc})") from None
        self.history = History(state["history"])
        self.epoch = int(state["epoch"])
        self.metrics.load_state_dict(state["epoch_metrics"])
        next_batch = int(state["next_batch"])
        if next_batch >= self.steps_per_epoch:  # saved at the end of an epoch
            self.epoch, next_batch = self.epoch + 1, 0
        return next_batch


STATE_TYPES = {
    "model": dict,
    "optimizer": dict,
    "epoch": int,
    "next_batch": int,
    "rng": dict,
    "history": list,
    "epoch_metrics": dict,
    "callbacks": dict,
}


def check_state_fits(state, model, optimizer, epochs: int, steps_per_epoch: int, samples: int):
    """Refuse a training state that is malformed or belongs to another model, optimizer or
    amount of data (ResumeError saying what differs)."""
    if not isinstance(state, dict):
        raise ResumeError("the training state must be a dict")
    for key, kind in STATE_TYPES.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise ResumeError(f"the training state's '{key}' is missing or not a {kind.__name__}")
    if not 0 <= state["epoch"] <= epochs or not 0 <= state["next_batch"] <= steps_per_epoch:
        raise ResumeError(
            f"the training state is at epoch {state['epoch']}, batch {state['next_batch']}, "
            f"outside a run of {epochs} epochs of {steps_per_epoch} batches"
        )
    theirs = (
        state.get("samples_per_epoch", samples),
        state.get("steps_per_epoch", steps_per_epoch),
    )
    if theirs != (samples, steps_per_epoch):
        raise ResumeError(
            f"the training state is from {theirs[0]} examples in {theirs[1]} batches per epoch; "
            f"this run has {samples} in {steps_per_epoch} (other data or batch size)"
        )
    _same("architecture", "model", _shapes(model.state_dict()), _shapes(state["model"]))
    groups = state["optimizer"].get("param_groups")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ResumeError("the training state's optimizer has no parameter groups")
    mine = [sorted(set(g) - {"params"}) for g in optimizer.state_dict()["param_groups"]]
    _same("optimizer or schedule", "settings", mine, [sorted(set(g) - {"params"}) for g in groups])
    _check_optimizer_state(state["optimizer"].get("state"), optimizer)
    _check_records(state)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_optimizer_state(saved, optimizer) -> None:
    """Every saved per-parameter array must have its parameter's shape."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not isinstance(saved, dict):
        raise ResumeError("the training state's optimizer state is not a dict")
    for index, entry in saved.items():
        if not (str(index).isdigit() and int(index) < len(params) and isinstance(entry, dict)):
            raise ResumeError(f"the training state's optimizer has state for parameter {index!r}")
        shape = tuple(params[int(index)].shape)
        for key, value in entry.items():
            ok = as_shape(value) == shape if hasattr(value, "shape") else _is_number(value)
            if not ok:
                raise ResumeError(
                    f"the training state's optimizer '{key}' of parameter {index} is "
                    f"{as_shape(value) or value!r}, the parameter is {shape}"
                )


def _check_records(state: dict) -> None:
    """History rows, epoch sums and callback states: plain numbers where numbers belong."""
    for row in state["history"]:
        if not isinstance(row, dict) or not all(v is None or _is_number(v) for v in row.values()):
            raise ResumeError("the training state's history holds a row that is not numbers")
    sums = state["epoch_metrics"]
    if not all(_is_number(sums.get(k)) for k in ("loss_sum", "correct", "count")):
        raise ResumeError("the training state's epoch metrics are not numbers")
    regression = sums.get("regression", {})
    if not isinstance(regression, dict) or not all(_is_number(v) for v in regression.values()):
        raise ResumeError("the training state's regression sums are not numbers")
    if not all(isinstance(v, dict) for v in state["callbacks"].values()):
        raise ResumeError("the training state's callback states are not dicts")
    rng = state["rng"]
    if (
        not isinstance(rng.get("state"), dict)
        or rng.get("bit_generator") != (backend.rng().bit_generator.state["bit_generator"])
    ):
        raise ResumeError("the training state's random state is not one this generator can take")


def _shapes(tensors: dict) -> dict:
    return {k: as_shape(v) for k, v in tensors.items()} if isinstance(tensors, dict) else {}


def _same(what: str, part: str, ours, theirs) -> None:
    if ours == theirs:
        return
    if isinstance(ours, dict):
        k = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))[0]
        detail = f"'{k}' is {theirs.get(k, 'absent')} there, {ours.get(k, 'absent')} here"
    else:
        detail = f"{part} {theirs} there, {ours} here"
    raise ResumeError(f"the training state is from another {what}: {detail}")


def as_shape(value) -> tuple:
    return tuple(getattr(value, "shape", ()))


def as_loader(data, batch_size, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader from a DataLoader, a dataset, or a pair ``(x, y)`` of arrays."""
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)):
        data = TensorDataset(*data)
    # batch_size=None: the whole set as one batch (plain gradient descent)
    return DataLoader(data, batch_size=batch_size or len(data), shuffle=shuffle, seed=seed)


def examples_in(data) -> int:
    """How many examples a DataLoader, a dataset or a pair ``(x, y)`` holds."""
    if isinstance(data, DataLoader):
        return len(data.dataset)
    return len(data[0]) if isinstance(data, (tuple, list)) else len(data)


def threshold_for(loss_fn) -> float:
    """Where a single output neuron says "yes": 0.5 for probabilities (BCELoss), else 0 (logits)."""
    return 0.5 if isinstance(loss_fn, BCELoss) else 0.0


def fit(
    model,
    loss_fn,
    optimizer,
    train_data,
    epochs: int = 1,
    batch_size: int | None = 32,
    validation_data=None,
    callbacks=(),
    accuracy: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    progress: bool = True,
    resume: dict | None = None,
    target_std: float | None = None,
    comm=None,
    initial_epoch: int = 0,
) -> History:
    """Train ``model`` to lower ``loss_fn`` on ``train_data`` with ``optimizer``.

    Args:
        train_data: ``(x, y)`` arrays, a dataset or a DataLoader.
        batch_size: examples per step (``None``: the whole set, i.e. plain gradient descent).
        validation_data: ``(x, y)`` evaluated after every epoch (logged as ``val_*``).
        callbacks: e.g. ``EarlyStopping``, ``ModelCheckpoint``, ``LRScheduler``.
        accuracy: also track classification accuracy.
        seed: shuffling seed (batches depend only on it and the epoch).
        progress: show a progress bar (added unless ``callbacks`` has one; on rank 0 only).
        resume: a training state saved by ``ModelCheckpoint`` (see ``ModelCheckpoint.load``);
            training continues exactly where it stopped.
        target_std: a regression: track ``mse``, ``rmse``, ``mae`` and ``r2`` instead of
            accuracy, the errors multiplied by ``target_std`` (the scale the targets were
            divided by; 1.0 for targets as they are), so they are in the targets' units.
        comm: the processes to train over (:func:`chainrule.distributed.init`); each takes its
            share of every batch, and the gradients are averaged over all of them before each
            step. Default: this process alone.
        initial_epoch: the epoch to start at (as Keras'): ``fit(..., epochs=e + 1,
            initial_epoch=e)`` trains epoch ``e`` alone, with that epoch's shuffle, which is how
            the playground trains one epoch at a time.

    Returns:
        A :class:`History` of per-epoch training and validation loss and accuracy (or
        regression metrics).
    """
    comm = comm or SingleProcess()
    for what, data in (("training", train_data), ("validation", validation_data)):
        if data is not None and examples_in(data) == 0:
            raise DataError(f"fit: the {what} data is empty (0 examples)")
    loader = comm.shard(as_loader(train_data, batch_size, shuffle, seed))
    for i, values in enumerate(getattr(loader.dataset, "tensors", ())):
        check_finite(as_array(values), "training data: " + ("inputs", "targets")[i > 0])
    for i, values in enumerate(validation_data if isinstance(validation_data, tuple) else ()):
        check_finite(as_array(values), "validation data: " + ("inputs", "targets")[i > 0])
    callbacks = list(callbacks)
    show_bar = progress and comm.rank == 0  # over several processes, rank 0 shows progress
    if show_bar and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.insert(0, ProgressBar())
    hooks = CallbackList(callbacks)
    run = Run(
        model,
        loss_fn,
        optimizer,
        epochs,
        len(loader),
        len(loader.dataset),
        History(),
        metrics=EpochMetrics(threshold_for(loss_fn), accuracy, target_std, comm),
        callbacks=hooks,
    )
    run.epoch = initial_epoch
    start_batch = run.load_state_dict(resume) if resume is not None else 0
    plan = {"epochs": epochs, "first epoch": run.epoch, "first batch": start_batch}
    plan |= {"batch size": loader.batch_size, "batches per epoch": len(loader)}
    plan["examples"] = len(loader.dataset)
    comm.start(model, optimizer, plan)  # every process starts from rank 0's weights and state

    hooks.on_train_begin(run)
    for epoch in range(run.epoch, epochs):
        run.epoch = epoch
        model.train()
        hooks.on_epoch_begin(run)
        started = time.perf_counter()
        for run.batch, (x, y) in enumerate(loader.epoch(epoch, start_batch), start=start_batch):
            output = model(x)  # forward propagation
            loss = loss_fn(output, y)  # the cost over the batch
            optimizer.zero_grad(set_to_none=False)  # zero in place: no reallocation
            loss.backward()  # backpropagation: the chain rule, layer by layer
            comm.allreduce_mean_grads(optimizer, len(x))  # over all processes (one: no-op)
            optimizer.step()  # one step downhill
            logs = run.metrics.update(loss.item(), output._data, y._data)  # of the whole batch
            hooks.on_batch_end(run, logs, run.metrics.last_count)
            if run.stop_training:
                break
        start_batch = 0
        logs = {
            "epoch": epoch + 1,
            **run.metrics.result(),
            "seconds": time.perf_counter() - started,
        }
        run.metrics = run.metrics.fresh()
        comm.end_epoch(model, optimizer)  # rank 0's buffers everywhere; weights checked equal
        if validation_data is not None:
            val = evaluate(
                model,
                loss_fn,
                validation_data,
                accuracy=accuracy,
                target_std=target_std,
                comm=comm,
            )
            logs.update({f"val_{k}": v for k, v in val.items()})
        lr = optimizer.param_groups[0]["lr"]
        logs["lr"] = lr(optimizer.step_count) if callable(lr) else lr
        run.history.append(logs)
        hooks.on_epoch_end(run, logs)
        if run.stop_training:
            break
    else:
        run.epoch = epochs
    hooks.on_train_end(run)
    return run.history


@autograd.no_grad()
def evaluate(
    model,
    loss_fn,
    data,
    batch_size: int = 1000,
    accuracy: bool = True,
    target_std: float | None = None,
    comm=None,
) -> dict:
    """Mean loss and accuracy (or, with ``target_std``, the regression metrics; see :func:`fit`)
    of ``model`` on ``data``, in evaluation mode, without a graph.

    With ``comm`` (several processes) each evaluates its share of ``data``, summing locally, and
    the sums are added up once at the end (as ChainerMN's evaluator does), so that every process
    returns the result over all of ``data`` whatever number of batches its share makes.

    Raises:
        DataError: ``data`` holds no examples (there is nothing to average).
    """
    comm = comm or SingleProcess()
    was_training = model.training
    model.eval()
    tracker = EpochMetrics(threshold_for(loss_fn), accuracy, target_std)  # this process's sums
    try:
        for x, y in as_loader(comm.shard_data(data), batch_size):
            output = model(x)
            tracker.update(loss_fn(output, y).item(), output._data, y._data)
    finally:
        model.train(was_training)
    tracker.total_over(comm)
    if tracker.count == 0:
        raise DataError("evaluate: the data is empty (0 examples); there is nothing to measure")
    return tracker.result()


@autograd.no_grad()
def predict(model, x, batch_size: int = 1000):
    """The model's outputs for ``x`` (an array), as one array, in evaluation mode.

    Raises:
        DataError: ``x`` holds no examples.
    """
    x = xp.asarray(getattr(x, "_data", x))
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"predict: the input of shape {x.shape} holds no examples")
    was_training = model.training
    model.eval()
    try:
        parts = [
            model(Tensor._make(x[i : i + batch_size], False))._data
            for i in range(0, len(x), batch_size)
        ]
    finally:
        model.train(was_training)
    return xp.concatenate(parts)
