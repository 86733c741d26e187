"""The fit loop: batch -> forward -> loss -> zero_grad -> backward -> step -> metrics -> callbacks.

Everything optional (progress bar, early stopping, checkpoints, schedules, NaN guard, CSV log) is a
callback, so the data path below reads on one screen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import autograd, backend
from ..backend import xp
from ..data.loader import DataLoader, TensorDataset
from ..nn.losses import BCELoss
from ..tensor import Tensor
from . import metrics as M


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

    def to_csv(self) -> str:
        keys = self.keys
        lines = [",".join(keys)]
        for row in self.rows:
            lines.append(",".join("" if row.get(k) is None else f"{row[k]:.6g}" for k in keys))
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"History({len(self.rows)} epochs, keys={self.keys})"


class EpochMetrics:
    """Running sums over an epoch: mean loss and accuracy weighted by batch size."""

    def __init__(self, threshold: float, with_accuracy: bool):
        self.threshold, self.with_accuracy = threshold, with_accuracy
        self.loss_sum = self.correct = 0.0
        self.count = 0

    def update(self, loss: float, output, target) -> dict:
        n = len(output)
        self.loss_sum += loss * n
        self.count += n
        if self.with_accuracy:
            self.correct += M.accuracy(output, target, self.threshold) * n
        return self.result()

    def result(self) -> dict:
        logs = {"loss": self.loss_sum / max(self.count, 1)}
        if self.with_accuracy:
            logs["accuracy"] = self.correct / max(self.count, 1)
        return logs

    def state_dict(self) -> dict:
        return {"loss_sum": self.loss_sum, "correct": self.correct, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.loss_sum, self.correct, self.count = (
            state["loss_sum"],
            state["correct"],
            state["count"],
        )


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


def as_loader(data, batch_size, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader from a DataLoader, a dataset, or a pair ``(x, y)`` of arrays."""
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)):
        data = TensorDataset(*data)
    # batch_size=None: the whole set as one batch (plain gradient descent)
    return DataLoader(data, batch_size=batch_size or len(data), shuffle=shuffle, seed=seed)


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
) -> History:
    """Train ``model`` to lower ``loss_fn`` on ``train_data`` with ``optimizer``.

    Args:
        train_data: ``(x, y)`` arrays, a dataset or a DataLoader.
        batch_size: examples per step (``None``: the whole set, i.e. plain gradient descent).
        validation_data: ``(x, y)`` evaluated after every epoch (logged as ``val_*``).
        callbacks: e.g. ``EarlyStopping``, ``ModelCheckpoint``, ``LRScheduler``.
        accuracy: also track classification accuracy.
        seed: shuffling seed (batches depend only on it and the epoch).
        progress: show a progress bar (added unless ``callbacks`` has one).
        resume: a training state saved by ``ModelCheckpoint`` (see ``ModelCheckpoint.load``);
            training continues exactly where it stopped.

    Returns:
        A :class:`History` of per-epoch training and validation loss and accuracy.
    """
    from .callbacks import CallbackList, ProgressBar

    loader = as_loader(train_data, batch_size, shuffle, seed)
    callbacks = list(callbacks)
    if progress and not any(isinstance(c, ProgressBar) for c in callbacks):
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
        metrics=EpochMetrics(threshold_for(loss_fn), accuracy),
        callbacks=hooks,
    )
    start_batch = restore(run, resume) if resume is not None else 0

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
            optimizer.step()  # one step downhill
            logs = run.metrics.update(loss.item(), output.data, y.data)
            hooks.on_batch_end(run, logs, len(x))
            if run.stop_training:
                break
        start_batch = 0
        logs = {
            "epoch": epoch + 1,
            **run.metrics.result(),
            "seconds": time.perf_counter() - started,
        }
        run.metrics = EpochMetrics(run.metrics.threshold, accuracy)
        if validation_data is not None:
            val = evaluate(model, loss_fn, validation_data, accuracy=accuracy)
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


def training_state(run: Run, next_batch: int) -> dict:
    """Everything needed to continue training exactly: weights, optimizer, position, RNG, logs."""
    return {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "epoch": run.epoch,
        "next_batch": next_batch,
        "rng": backend.rng().bit_generator.state,
        "history": run.history.rows,
        "epoch_metrics": run.metrics.state_dict(),
        "callbacks": run.callbacks.state_dict(),
    }


def restore(run: Run, state: dict) -> int:
    """Load a training state into the run; returns the batch to continue from."""
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    backend.rng().bit_generator.state = state["rng"]
    run.history = History(state["history"])
    run.epoch = int(state["epoch"])
    run.metrics.load_state_dict(state["epoch_metrics"])
    run.callbacks.load_state_dict(state["callbacks"])
    next_batch = int(state["next_batch"])
    if next_batch >= run.steps_per_epoch:  # saved at the end of an epoch
        run.epoch, next_batch = run.epoch + 1, 0
    return next_batch


@autograd.no_grad()
def evaluate(model, loss_fn, data, batch_size: int = 1000, accuracy: bool = True) -> dict:
    """Mean loss (and accuracy) of ``model`` on ``data``, in evaluation mode, without a graph."""
    was_training = model.training
    model.eval()
    tracker = EpochMetrics(threshold_for(loss_fn), accuracy)
    try:
        for x, y in as_loader(data, batch_size):
            output = model(x)
            tracker.update(loss_fn(output, y).item(), output.data, y.data)
    finally:
        model.train(was_training)
    return tracker.result()


@autograd.no_grad()
def predict(model, x, batch_size: int = 1000):
    """The model's outputs for ``x`` (an array), as one array, in evaluation mode."""
    was_training = model.training
    model.eval()
    x = xp.asarray(getattr(x, "data", x))
    try:
        parts = [
            model(Tensor._make(x[i : i + batch_size], False)).data
            for i in range(0, len(x), batch_size)
        ]
    finally:
        model.train(was_training)
    return xp.concatenate(parts)
