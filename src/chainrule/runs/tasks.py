"""Classification or regression: which one a run's data asks for, and the targets it trains on.

* The task follows the data: class labels (the built-in image and point sets, a CSV column of
  names or of a few whole numbers) make a classification, real numbers a regression (the
  ``line``, ``plane``, ``bumps``, ``diabetes`` and ``california`` sets, a CSV column of
  measurements). ``--task`` overrides it where the data allows: any targets can be regressed on;
  a classification needs whole-number targets with at most ``MAX_CLASSES`` different values.
* Regression targets are standardised with the training split's mean and standard deviation,
  ``t = (y - mean) / std``, because a linear output neuron learns best on numbers near 0 and 1;
  every reported number and every prediction undoes it, ``y = output * std + mean``.
* Tables (the regression sets and CSV files) are standardised feature by feature: their columns
  are measured in different units (California's population in thousands, its latitude in tens).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .. import data
from ..backend import xp
from ..data.csv import MAX_CLASSES
from ..data.datasets import CALIFORNIA_FEATURES, DIABETES_FEATURES
from ..data.download import sha256_of
from .config import TASKS, Config, RunError

TEST_FRACTION = 0.2
GENERATED_SIZE = 1000  # examples of each generated set, as for the 2-D point sets
REGRESSION_SETS = ("line", "plane", "bumps", "diabetes", "california")
GENERATED = {"line": data.line, "plane": data.plane, "bumps": data.bumps}
FEATURE_NAMES = {
    "line": ["x"],
    "plane": ["x1", "x2"],
    "bumps": ["x1", "x2"],
    "diabetes": DIABETES_FEATURES,
    "california": CALIFORNIA_FEATURES,
}
TARGET_NAMES = {
    "line": "y",
    "plane": "y",
    "bumps": "y",
    "diabetes": "progression",
    "california": "MedHouseVal",
}


@dataclass
class Table:
    """A data set before preprocessing: examples, and what its columns and targets are.

    ``classes`` names what each class index stands for where the data named them (a CSV file's
    class column); empty where the labels are the classes (0..K-1).
    """

    train: tuple
    test: tuple
    task: str
    pixel_max: float | None = None
    tabular: bool = False
    feature_names: list = field(default_factory=list)
    target_name: str | None = None
    classes: list = field(default_factory=list)
    sha256: str | None = None


def load_regression_set(config: Config) -> Table:
    """One of :data:`REGRESSION_SETS`, split into training and test examples (seed 0)."""
    name = config.dataset
    if name in GENERATED:
        x, y = GENERATED[name](n=GENERATED_SIZE, seed=0)
    elif name == "diabetes":
        x, y = data.load_diabetes()
    else:
        x, y = data.load_california(config.data_dir, download=config.download)
    train, test = data.train_val_split(x, y, val_fraction=TEST_FRACTION, seed=0)
    names = {"feature_names": FEATURE_NAMES[name], "target_name": TARGET_NAMES[name]}
    return Table(train, test, "regression", tabular=True, **names)


def load_csv(config: Config) -> Table:
    """The user's CSV file (``data``), its target column ``target`` (default: the last), split
    into training and test examples (seed 0; each class in proportion)."""
    if config.target is not None and not isinstance(config.target, str):
        raise RunError(
            f"--target {config.target}: with --data, --target names the target column "
            "(a name from the file's header row)"
        )
    table = data.read_csv(config.data, target=config.target, task=config.task)
    stratify = table.target if table.task == "classification" else None
    try:
        train, test = data.train_val_split(
            table.features, table.target, val_fraction=TEST_FRACTION, seed=0, stratify=stratify
        )
    except data.DataError:
        raise RunError(
            f"{config.data}: {len(table.target)} rows are too few to set {TEST_FRACTION:.0%} of "
            "them (of each class) aside for testing; the file needs more rows"
        ) from None
    return Table(
        train,
        test,
        table.task,
        tabular=True,
        feature_names=table.feature_names,
        target_name=table.target_name,
        classes=table.classes,
        sha256=sha256_of(Path(config.data)),
    )


def settle_task(table: Table, config: Config, where: str) -> Table:
    """``table`` for the task ``config.task`` asks for (or the one its data says): regression
    targets as float32 numbers, classification targets as class indices."""
    if config.task is not None and config.task not in TASKS:
        raise RunError(f"--task {config.task!r}: choose classification or regression")
    task = config.task or table.task
    settled = table if task == table.task else _convert(table, task, where)
    if task == "classification":
        _check_two_classes(settled, where)
    return settled


def _check_two_classes(table: Table, where: str) -> None:
    """Refuse a classification whose targets are all one class: there is nothing to tell apart
    (and a one-output network would be taken for a yes/no classifier)."""
    (_, y_train), (_, y_test) = table.train, table.test
    distinct = xp.unique(xp.concatenate([xp.asarray(y_train), xp.asarray(y_test)]))
    if len(distinct) == 1:
        only = table.classes[int(distinct[0])] if table.classes else int(distinct[0])
        raise RunError(
            f"{where}: every target is the same class ({str(only)[:40]}); a classification "
            "needs at least two different classes"
        )


def _convert(table: Table, task: str, where: str) -> Table:
    """``table``'s targets for the other task (see :func:`settle_task`)."""
    (x_train, y_train), (x_test, y_test) = table.train, table.test
    if task == "regression":
        if table.classes and not all(isinstance(c, (int, float)) for c in table.classes):
            raise RunError(f"--task regression: the targets of {where} are names, not numbers")
        values = table.classes or None
        y_train, y_test = (
            (xp.asarray(values)[y] if values else y).astype(xp.float32) for y in (y_train, y_test)
        )
        return _replace(table, (x_train, y_train), (x_test, y_test), task, [])
    both = xp.concatenate([y_train, y_test]).astype(xp.float64)
    distinct = xp.unique(both)
    if not (both == xp.round(both)).all() or len(distinct) > MAX_CLASSES:
        raise RunError(
            f"--task classification: the targets of {where} are not class labels "
            f"({len(distinct)} different values; classes are whole numbers, at most "
            f"{MAX_CLASSES} of them)"
        )
    y_train, y_test = (xp.searchsorted(distinct, y).astype(xp.int64) for y in (y_train, y_test))
    classes = [int(c) for c in distinct]
    return _replace(table, (x_train, y_train), (x_test, y_test), task, classes)


def _replace(table: Table, train, test, task: str, classes: list) -> Table:
    return dataclasses.replace(table, train=train, test=test, task=task, classes=classes)


def target_scaling(y_train, where: str, recorded: dict | None = None) -> tuple[float, float]:
    """``(mean, std)`` of the training targets (float64), or those a trained run recorded."""
    if recorded is not None:
        return recorded["target_mean"], recorded["target_std"]
    values = xp.asarray(y_train, dtype=xp.float64)
    mean, std = float(values.mean()), float(values.std())
    if not std > 0:
        raise RunError(
            f"{where}: every training target is {mean:g}; there is nothing to learn by regression"
        )
    return mean, std


def standardised_targets(y, mean: float, std: float):
    """``(y - mean) / std`` as a float32 column (N, 1), the shape of the network's output."""
    return ((xp.asarray(y, dtype=xp.float64) - mean) / std).astype(xp.float32)[:, None]
