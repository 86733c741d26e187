"""Callbacks: everything around the fit loop that is not the data path.

A callback overrides any of ``on_train_begin(run)``, ``on_epoch_begin(run)``,
``on_batch_end(run, logs, batch_size)``, ``on_epoch_end(run, logs)``, ``on_train_end(run)``;
``run`` (see :class:`~chainrule.train.loop.Run`) gives the model, optimizer, history and
``stop_training``; ``run.state_dict(next_batch)`` is everything needed to resume. Callbacks with
state implement ``state_dict``/``load_state_dict`` so that a resumed run continues exactly.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from ..backend import xp
from ..io import atomic_write, load_checkpoint, save_checkpoint
from ..optim import lr_scheduler as schedules


class Callback:
    def on_train_begin(self, run) -> None: ...

    def on_epoch_begin(self, run) -> None: ...

    def on_batch_end(self, run, logs: dict, batch_size: int) -> None: ...

    def on_epoch_end(self, run, logs: dict) -> None: ...

    def on_train_end(self, run) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class CallbackList(Callback):
    """Calls each hook on every callback, in order; checkpoints go last, so that they capture the
    state after every other callback (e.g. a schedule's step) has run."""

    def __init__(self, callbacks):
        self.callbacks = sorted(callbacks, key=lambda c: isinstance(c, ModelCheckpoint))

    def on_train_begin(self, run):
        for c in self.callbacks:
            c.on_train_begin(run)

    def on_epoch_begin(self, run):
        for c in self.callbacks:
            c.on_epoch_begin(run)

    def on_batch_end(self, run, logs, batch_size):
        for c in self.callbacks:
            c.on_batch_end(run, logs, batch_size)

    def on_epoch_end(self, run, logs):
        for c in self.callbacks:
            c.on_epoch_end(run, logs)

    def on_train_end(self, run):
        for c in self.callbacks:
            c.on_train_end(run)

    def state_dict(self):
        return {f"{i}.{type(c).__name__}": c.state_dict() for i, c in enumerate(self.callbacks)}

    def load_state_dict(self, state):
        for i, c in enumerate(self.callbacks):
            c.load_state_dict(state.get(f"{i}.{type(c).__name__}", {}))


# the names the progress shows (short, so that a line of 80 columns holds the validation numbers)
SHOWN = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
# in a terminal the numbers come first and the bar after them, so that a narrow terminal cuts the
# bar, not the numbers (tqdm trims a line at its right end)
BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {rate_fmt} <{remaining}"


def _format_logs(logs: dict) -> str:
    return " ".join(f"{name} {logs[k]:.4f}" for k, name in SHOWN.items() if logs.get(k) is not None)


class ProgressBar(Callback):
    """A tqdm bar per epoch (loss, accuracy, then the bar, samples/s and ETA); in notebooks tqdm's
    widget; when the output is not a terminal, one plain line per epoch instead.

    ``ncols``: the width of the line (default: the terminal's, followed as it changes).
    """

    def __init__(self, stream=None, interactive: bool | None = None, ncols: int | None = None):
        self.stream = stream or sys.stderr
        if interactive is None:
            interactive = (
                "ipykernel" in sys.modules or getattr(self.stream, "isatty", lambda: False)()
            )
        self.interactive = interactive
        self.ncols = ncols
        self.bar = None

    def on_epoch_begin(self, run):
        self.started = time.perf_counter()
        self.seen = 0
        if self.interactive:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=run.samples_per_epoch,
                unit="sample",
                unit_scale=True,
                file=self.stream,
                desc=self._epoch(run),
                bar_format=BAR_FORMAT,
                leave=True,
                ncols=self.ncols,
                dynamic_ncols=self.ncols is None,
            )

    @staticmethod
    def _epoch(run) -> str:
        return f"epoch {run.epoch + 1}/{run.epochs}"

    def on_batch_end(self, run, logs, batch_size):
        self.seen += batch_size
        if self.bar is not None:
            self.bar.set_description_str(f"{self._epoch(run)} {_format_logs(logs)}", refresh=False)
            self.bar.update(batch_size)

    def on_epoch_end(self, run, logs):
        seconds = time.perf_counter() - self.started
        rate = self.seen / seconds if seconds > 0 else 0.0
        if self.bar is not None:
            self.bar.set_description_str(f"{self._epoch(run)} {_format_logs(logs)}", refresh=True)
            self.bar.close()
            self.bar = None
        else:
            print(
                f"{self._epoch(run)}  {_format_logs(logs)}  {rate:,.0f} samples/s  {seconds:.1f}s",
                file=self.stream,
                flush=True,
            )


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``restore_best``, put back the weights of the best epoch at the end."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ):
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.restore_best = restore_best
        self.best, self.best_epoch, self.wait, self.best_weights = None, None, 0, None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, run, logs):
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping monitors '{self.monitor}', but the logs only have {sorted(logs)}"
                " (pass validation_data to fit for val_* metrics)"
            )
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, logs["epoch"], 0
            if self.restore_best:
                self.best_weights = {k: v._data.copy() for k, v in run.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                run.stop_training = True

    def on_train_end(self, run):
        if self.restore_best and self.best_weights is not None:
            run.model.load_state_dict(self.best_weights)

    def state_dict(self):
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state):
        if state:
            self.best, self.best_epoch, self.wait = (
                state["best"],
                state["best_epoch"],
                state["wait"],
            )
            self.best_weights = state["best_weights"]


class ModelCheckpoint(Callback):
    """Save everything needed to resume (weights, optimizer, position, random state, history) to
    one file, atomically: at the end of every epoch, and every ``every_n_batches`` batches if set.

    Resume with ``fit(..., resume=ModelCheckpoint.load(path))``.
    """

    def __init__(self, path, every_n_batches: int | None = None, extra: dict | None = None):
        if every_n_batches is not None and (
            not isinstance(every_n_batches, int) or every_n_batches < 1
        ):
            raise ValueError(f"every_n_batches must be a positive integer, got {every_n_batches!r}")
        self.path = Path(path)
        self.every_n_batches = every_n_batches
        self.extra = extra or {}  # e.g. the settings of the run, to check a resume against

    def on_batch_end(self, run, logs, batch_size):
        done = run.batch + 1
        if self.every_n_batches and done % self.every_n_batches == 0 and done < run.steps_per_epoch:
            self._save(run, done)

    def on_epoch_end(self, run, logs):
        self._save(run, run.steps_per_epoch)

    def _save(self, run, next_batch: int) -> None:
        save_checkpoint(self.path, {**run.state_dict(next_batch), "extra": self.extra})

    @staticmethod
    def load(path) -> dict:
        return load_checkpoint(path)


class LRSchedulerCallback(Callback):
    """Step a learning-rate scheduler during ``fit``: after every epoch, or every batch with
    ``per="batch"`` (as :class:`~chainrule.optim.lr_scheduler.OneCycleLR` expects).

    ``scheduler`` is one of :mod:`chainrule.optim.lr_scheduler`'s, already attached to the
    optimizer, or a function ``epoch -> lr``. A
    :class:`~chainrule.optim.lr_scheduler.ReduceLROnPlateau` is stepped with ``logs[monitor]``.

    Example::

        opt = optim.SGD(model.parameters(), lr=0.1)
        plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
        fit(model, loss_fn, opt, data, validation_data=val,
            callbacks=[LRSchedulerCallback(plateau, monitor="val_loss")])
    """

    def __init__(self, scheduler, per: str = "epoch", monitor: str = "val_loss"):
        if per not in ("epoch", "batch"):
            raise ValueError(f"LRSchedulerCallback per must be 'epoch' or 'batch', got {per!r}")
        self.scheduler, self.per, self.monitor = scheduler, per, monitor
        self.on_plateau = isinstance(scheduler, schedules.ReduceLROnPlateau)
        if self.on_plateau and per == "batch":
            raise ValueError("ReduceLROnPlateau watches a metric per epoch: use per='epoch'")
        if self.on_plateau and ("acc" in monitor) != (scheduler.mode == "max"):
            raise ValueError(
                f"monitor '{monitor}' should go {'up' if 'acc' in monitor else 'down'}, but the "
                f"ReduceLROnPlateau has mode='{scheduler.mode}'"
            )

    def _step(self, run, count, logs=None):
        if self.on_plateau:
            if self.monitor not in logs:
                raise KeyError(
                    f"LRSchedulerCallback monitors '{self.monitor}', the logs have {sorted(logs)}"
                    " (pass validation_data to fit for val_* metrics)"
                )
            self.scheduler.step(logs[self.monitor])
        elif isinstance(self.scheduler, schedules.LRScheduler):
            self.scheduler.step()
        else:
            for group in run.optimizer.param_groups:
                group["lr"] = float(self.scheduler(count))

    def on_train_begin(self, run):
        if callable(self.scheduler) and run.epoch == 0:  # a function: apply epoch 0's rate
            for group in run.optimizer.param_groups:
                group["lr"] = float(self.scheduler(0))

    def on_batch_end(self, run, logs, batch_size):
        if self.per == "batch":
            self._step(run, run.epoch * run.steps_per_epoch + run.batch + 1)

    def on_epoch_end(self, run, logs):
        if self.per == "epoch":
            self._step(run, run.epoch + 1, logs)

    def state_dict(self):
        return self.scheduler.state_dict() if hasattr(self.scheduler, "state_dict") else {}

    def load_state_dict(self, state):
        if state and hasattr(self.scheduler, "load_state_dict"):
            check_like(self.scheduler.state_dict(), state, type(self.scheduler).__name__)
            self.scheduler.load_state_dict(state)


def check_like(ours, theirs, what: str) -> None:
    """Refuse a saved state whose keys or value types differ from ``ours`` (ValueError): a
    resumed scheduler must get numbers where it keeps numbers, lists of the same length..."""

    def kind(value):
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return type(value).__name__
        if isinstance(value, (int, float)):
            return "number"
        if isinstance(value, (list, tuple)):
            return ("list", tuple(kind(v) for v in value))
        if isinstance(value, dict):
            return ("dict", tuple(sorted((str(k), kind(v)) for k, v in value.items())))
        return type(value).__name__

    if not isinstance(theirs, dict) or kind(ours) != kind(theirs):
        raise ValueError(f"the saved state of {what} does not fit it")


class DivergenceError(FloatingPointError):
    """Training blew up: the loss grew without bound, or became NaN or infinite."""


class NonFiniteError(DivergenceError):
    """Training produced NaN or infinity."""


class TerminateOnNaN(Callback):
    """Stop with an error when training blows up: the loss is NaN or infinite (naming the first
    parameter whose gradient or value is not finite), or it diverges while staying finite (it grew
    past ``divergence_factor`` times the first batch's loss, or 1 if that was smaller; with
    lr = 1e6 the loss reaches 1e19 long before it overflows)."""

    def __init__(self, divergence_factor: float = 1e4):
        if not divergence_factor > 1:
            raise ValueError(f"divergence_factor must be > 1, got {divergence_factor!r}")
        self.divergence_factor = divergence_factor
        self.first_loss = None

    def on_batch_end(self, run, logs, batch_size):
        loss = logs.get("loss")
        where = f"epoch {run.epoch + 1}, batch {run.batch + 1}"
        if loss is not None and math.isfinite(loss):
            if self.first_loss is None:
                self.first_loss = loss
            limit = self.divergence_factor * max(abs(self.first_loss), 1.0)
            if abs(loss) > limit:
                raise DivergenceError(
                    f"{where}: training diverged: the loss grew to {loss:.3g} (it started at "
                    f"{self.first_loss:.3g}); try a smaller learning rate"
                )
            return
        for name, p in run.model.named_parameters():
            for what, array in (
                ("gradient", None if p.grad is None else p.grad._data),
                ("value", p._data),
            ):
                if array is not None and not xp.all(xp.isfinite(array)):
                    raise NonFiniteError(
                        f"{where}: the {what} of parameter '{name}' became non-finite "
                        f"(loss {loss}); try a smaller learning rate"
                    )
        raise NonFiniteError(
            f"{where}: the loss is {loss} although every parameter and gradient is finite; "
            "check the input data and targets"
        )

    def state_dict(self):
        return {"first_loss": self.first_loss}

    def load_state_dict(self, state):
        first = state.get("first_loss", self.first_loss)
        if first is not None and (isinstance(first, bool) or not isinstance(first, (int, float))):
            raise ValueError(f"the saved state of TerminateOnNaN has first_loss {first!r}")
        self.first_loss = first


class CSVLogger(Callback):
    """Write the history as CSV after every epoch (atomically, so the file is always complete)."""

    def __init__(self, path):
        self.path = Path(path)

    def on_epoch_end(self, run, logs):
        atomic_write(self.path, run.history.to_csv().encode())
