"""One playground run: its points, network, optimizer and history, trained an epoch at a time.

An epoch is one epoch of chainrule's training loop, :func:`~chainrule.train.fit` (the exported
script writes the same steps out):

    for x, y in loader:                       # shuffled from (seed, epoch) alone
        loss = loss_fn(model(x), y) [+ penalty]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

followed by the loss on every training and test point. The weights start from ``manual_seed(seed)``
and dropout draws from the same stream, so a run is the same whenever it is repeated; each
session's thread draws from a stream of its own (:func:`~chainrule.backend.use_rng`), so tabs do
not disturb each other, nor wait for each other.
"""

from __future__ import annotations

import time

from .. import backend
from ..backend import ignore_float_errors, new_rng, use_rng
from ..data.loader import DataLoader
from ..engine import no_grad
from ..tensor import Tensor, as_array
from ..train import Callback, fit
from ..train.metrics import RegressionSums, accuracy
from . import network
from .points import Points

PATH_LIMIT = 20_000  # (w, b) pairs kept in the best-fit-line mode before thinning


class LiveTraining:
    """One epoch at a time through chainrule's training loop, for a page that watches: the
    run's ``model``, ``objective(output, target)``, ``optimizer``, ``loader`` and ``generator``
    (its random stream) are the subclass's."""

    def train_epoch(self) -> float:
        """One pass over the training data through :func:`~chainrule.train.fit`; returns the
        last batch's objective."""
        started = time.perf_counter()
        steps = StepRecorder(self)
        # overflow on the way to a divergence is reported on the page, not as warnings
        with use_rng(self.generator), ignore_float_errors():  # dropout draws from it
            fit(
                self.model,
                self.objective,
                self.optimizer,
                self.loader,
                epochs=self.epoch + 1,
                initial_epoch=self.epoch,
                callbacks=[steps],
                accuracy=False,
                progress=False,
            )
        self.epoch += 1
        self.seconds += time.perf_counter() - started
        self.history.append(self.measure())
        return steps.last_objective


class Trainer(LiveTraining):
    """The state of one run of a setup (owned by its session's thread).

    Attributes:
        epoch: epochs trained; ``steps``: optimizer steps taken.
        history: one row per epoch: ``epoch``, ``loss`` and ``val_loss`` (the loss on the
            training and test points, without regularisation), and ``accuracy`` /
            ``val_accuracy``, or for a regression ``rmse`` / ``val_rmse`` (in the target's
            units) and ``r2`` / ``val_r2``.
        start: the same row for the untrained network (epoch 0), where the loss curve starts.
        path: in the best-fit-line mode, ``(w, b)`` before the first step and after each.
    """

    def __init__(self, setup, points: Points):
        self.setup, self.points = setup, points
        self.generator = new_rng(backend.check_seed(setup.seed))
        with use_rng(self.generator):
            self.model = network.build_network(setup, points)
        self.outputs = network.outputs_of(setup, points)
        self.loss_fn = network.build_loss(setup)
        self.optimizer = network.build_optimizer(setup, self.model.parameters())
        self.weights = network.weights_of(self.model)
        self.fit_line = network.is_fit_line(setup, points)
        self.description = network.describe(setup, points)
        one_output = setup.output == "sigmoid"
        self.train_data = (
            points.network_inputs(points.x_train),
            points.network_targets(points.y_train, one_output),
        )
        self.test_data = (
            points.network_inputs(points.x_test),
            points.network_targets(points.y_test, one_output),
        )
        # no loader while the points cannot be trained on (the user's own set may be empty)
        self.loader = (
            DataLoader(self.train_data, setup.batch, shuffle=True, seed=setup.seed)
            if self.trainable
            else None
        )
        self.epoch = self.steps = 0
        self.seconds = 0.0
        self.history: list[dict] = []
        self.start = self.measure() if self.trainable else {"epoch": 0}
        self.path: list = [self._line()] if self.fit_line else []
        self._path_stride = 1

    @property
    def problem(self) -> str | None:
        """Why the points cannot be trained on (None: they can)."""
        return self.points.problem

    @property
    def trainable(self) -> bool:
        return self.problem is None

    def objective(self, output, target):
        """What the steps lower: the loss plus the L1/L2 penalty on the weights, if any."""
        loss = self.loss_fn(output, target)
        penalty = network.penalty(self.setup, self.weights)
        return loss if penalty is None else loss + penalty

    def measure(self) -> dict:
        """This epoch's row of the history: losses and metrics on all training and test points."""
        row = {"epoch": self.epoch}
        for prefix, (x, y) in (("", self.train_data), ("val_", self.test_data)):
            for key, value in self._metrics(x, y).items():
                row[prefix + key] = value
        return row

    def _metrics(self, x, y) -> dict:
        if not len(x):
            return {}
        self.model.eval()
        with no_grad(), ignore_float_errors():
            out = self.model(Tensor._make(x, False))
            loss = float(self.loss_fn(out, Tensor._make(y, False)).item())
        if self.points.task == "regression":  # RMSE in the target's units
            sums = RegressionSums(scale=self.points.target_std)
            sums.update(out, y)
            found = sums.result()
            return {"loss": loss, "rmse": found["rmse"], "r2": found["r2"]}
        return {"loss": loss, "accuracy": accuracy(out, y)}

    def latest(self, which: str) -> dict | None:
        """The last epoch's numbers for ``train`` or ``test`` (the untrained network's at epoch
        0; None where there are none)."""
        row = self.history[-1] if self.history else self.start
        if len(row) == 1:
            return None
        if which == "test":
            return {k.removeprefix("val_"): v for k, v in row.items() if k.startswith("val_")}
        return {k: v for k, v in row.items() if k != "epoch" and not k.startswith("val_")}

    def _line(self) -> tuple[float, float]:
        linear = self.model[-1]
        return float(as_array(linear.weight)[0, 0]), float(as_array(linear.bias)[0])

    def _record_path(self) -> None:
        """Keep every step's (w, b), thinned to every 2nd, 4th, ... past PATH_LIMIT steps."""
        if self.steps % self._path_stride == 0:
            self.path.append(self._line())
        if len(self.path) > PATH_LIMIT:
            self.path = self.path[::2]
            self._path_stride *= 2


class StepRecorder(Callback):
    """Counts the trainer's steps, keeps the last batch's objective and, in the best-fit-line
    mode, the line after each step."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.last_objective = trainer, float("nan")

    def on_batch_end(self, run, logs: dict, batch_size: int) -> None:
        self.trainer.steps += 1
        self.last_objective = run.metrics.last_loss
        if self.trainer.fit_line:
            self.trainer._record_path()
