"""The playground's data: the generated sets, the user's own points and CSV files, split and
scaled the way ``chainrule train`` does it.

* Generated sets come from :mod:`chainrule.data` (``cr.data.spirals(n=..., noise=..., seed=...)``),
  each with its own noise setting, passed through unchanged.
* Points added by clicking are training points (they are there to push the boundary around);
  on the empty ``custom`` set they are the whole data set, and are split like any other.
* The train/test split is chainrule's CSV split: ``train_val_split(..., seed=0)``, each class in
  proportion; so an exported run's ``data.csv`` is split again into the same test points when
  the test fraction is 0.2, the command line's.
* Inputs are standardised feature by feature with the training points' mean and standard
  deviation (as for a CSV table), regression targets likewise; the network never sees raw
  coordinates, and the exported run records both scalings, as ``train`` does.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import data
from ..backend import xp
from ..runs.tasks import standardised_targets

MAX_UPLOAD_BYTES = 512 << 10
MAX_UPLOAD_ROWS = 2000
MAX_CLASSES = 6


class PlaygroundError(ValueError):
    """A setting or a file the playground cannot use: one line for the page to show."""


@dataclass(frozen=True)
class DataSet:
    """One choice of the data menu: its task, its inputs and how its points are made.

    ``noise`` names the generator's own noise argument (``None``: the set has none), with its
    default and the largest value the page offers; ``make(n, noise, classes, seed)`` draws the
    points and ``call`` writes the same call as Python for the exported script.
    """

    name: str
    label: str
    task: str
    inputs: int
    function: str | None = None
    noise: str | None = None
    noise_default: float = 0.0
    noise_max: float = 0.0
    has_classes: bool = False

    def make(self, n: int, noise: float, classes: int, seed: int):
        kwargs = {"n": n, "seed": seed}
        if self.noise:
            kwargs[self.noise] = noise
        if self.has_classes:
            kwargs["classes"] = classes
        return getattr(data, self.function)(**kwargs)

    def call(self, n: int, noise: float, classes: int, seed: int) -> str:
        args = [f"n={n}"]
        if self.has_classes:
            args.append(f"classes={classes}")
        if self.noise:
            args.append(f"{self.noise}={noise!r}")
        return f"cr.data.{self.function}({', '.join(args + [f'seed={seed}'])})"


DATA_SETS = {
    s.name: s
    for s in (
        DataSet("circles", "circles", "classification", 2, "circles", "noise", 0.05, 0.3),
        DataSet("xor", "xor", "classification", 2, "xor", "noise", 0.1, 0.5),
        DataSet(
            "gaussians", "two gaussians", "classification", 2, "two_gaussians", "spread", 1.0, 3
        ),
        DataSet("spirals", "spirals", "classification", 2, "spirals", "noise", 0.2, 3, True),
        DataSet("moons", "moons", "classification", 2, "moons", "noise", 0.1, 0.5),
        DataSet("blobs", "blobs", "classification", 2, "blobs", "spread", 1.0, 4, True),
        DataSet("custom", "your points", "classification", 2, has_classes=True),
        DataSet("line", "line", "regression", 1, "line", "noise", 0.5, 3),
        DataSet("plane", "plane", "regression", 2, "plane", "noise", 0.05, 0.5),
        DataSet("bumps", "bumps", "regression", 2, "bumps", "noise", 0.05, 0.5),
        DataSet("upload", "CSV file", "", 2),
    )
}
CUSTOM_DOMAIN = ((-1.0, 1.0), (-1.0, 1.0))


@dataclass
class Upload:
    """A CSV file the user uploaded: 1 or 2 feature columns and a target column."""

    name: str
    features: object
    target: object
    task: str
    feature_names: list
    target_name: str
    classes: list = field(default_factory=list)


def read_upload(name: str, text: str) -> Upload:
    """Read an uploaded CSV file with chainrule's CSV reader (its messages name the line and
    column); the playground takes 1 or 2 features, at most ``MAX_UPLOAD_ROWS`` rows and
    ``MAX_CLASSES`` classes."""
    name = Path(str(name) or "upload.csv").name[:100]
    raw = text.encode()
    if len(raw) > MAX_UPLOAD_BYTES:
        raise PlaygroundError(
            f"{name}: {len(raw):,} bytes; the playground takes files of at most "
            f"{MAX_UPLOAD_BYTES >> 10} KiB"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(raw)
        try:
            table = data.read_csv(path, max_bytes=MAX_UPLOAD_BYTES)
        except data.CSVError as exc:
            raise PlaygroundError(str(exc).replace(str(path), name)) from None
    rows, columns = table.features.shape
    if columns not in (1, 2):
        raise PlaygroundError(
            f"{name}: {columns} feature columns ({', '.join(table.feature_names)}); the "
            "playground draws 2 (x, y and a class or value) or 1 (x and a value)"
        )
    if rows > MAX_UPLOAD_ROWS:
        raise PlaygroundError(
            f"{name}: {rows:,} rows; the playground takes at most {MAX_UPLOAD_ROWS:,}"
        )
    if table.task == "classification" and columns == 1:
        raise PlaygroundError(f"{name}: one feature and classes; give two features for classes")
    if len(table.classes) > MAX_CLASSES:
        raise PlaygroundError(
            f"{name}: {len(table.classes)} classes; the playground shows at most {MAX_CLASSES}"
        )
    data.check_finite(table.features, f"{name}: the features")
    return Upload(
        name,
        table.features,
        table.target,
        table.task,
        table.feature_names,
        table.target_name,
        table.classes,
    )


@dataclass
class Points:
    """The points of one setup, raw (as drawn) and scaled (as the network sees them).

    ``problem`` says why the network cannot train yet (too few points of the user's own), or is
    None. ``domain`` is the ``((x_min, x_max), (y_min, y_max))`` the views show: for one input,
    the second range is the targets'.
    """

    task: str
    inputs: int
    x_train: object
    y_train: object
    x_test: object
    y_test: object
    x_all: object  # every point in the order data.csv holds them
    y_all: object
    classes: list
    feature_names: list
    target_name: str
    standardizer: data.Standardizer
    domain: tuple
    target_mean: float | None = None
    target_std: float | None = None
    problem: str | None = None
    added: int = 0

    def network_inputs(self, x):
        """Points as the network takes them: standardised with the training statistics."""
        return self.standardizer(x)

    def network_targets(self, y, one_output: bool = False):
        """Targets as the loss takes them: standardised values (N, 1) for a regression, 0/1
        floats (N, 1) for a single sigmoid output, class indices otherwise."""
        if self.task == "regression":
            return standardised_targets(y, self.target_mean, self.target_std)
        if one_output:
            return xp.asarray(y, dtype=xp.float32)[:, None]
        return xp.asarray(y, dtype=xp.int64)


def task_of(setup, upload: Upload | None) -> str:
    """Classification or regression, as the data set (or the uploaded file) says."""
    if setup.dataset == "upload":
        return upload.task if upload is not None else "classification"
    return DATA_SETS[setup.dataset].task


def inputs_of(setup, upload: Upload | None) -> int:
    if setup.dataset == "upload":
        return upload.features.shape[1] if upload is not None else 2
    return DATA_SETS[setup.dataset].inputs


def class_count(setup, upload: Upload | None) -> int:
    """How many classes (output neurons of a softmax); 0 for a regression."""
    if task_of(setup, upload) == "regression":
        return 0
    if setup.dataset == "upload":
        return len(upload.classes) if upload is not None else 2
    spec = DATA_SETS[setup.dataset]
    return setup.classes if spec.has_classes else 2


def build_points(setup, upload: Upload | None = None) -> Points:
    """The points of ``setup`` (a checked :class:`~.settings.Setup`): drawn, split, scaled."""
    spec = DATA_SETS[setup.dataset]
    task, inputs = task_of(setup, upload), inputs_of(setup, upload)
    added_x, added_y = _added_points(setup.points, inputs, task)
    if setup.dataset == "upload":
        if upload is None:
            raise PlaygroundError(
                "data set 'upload': upload a CSV file first (a file is not part of a link)"
            )
        x, y = upload.features, upload.target
        classes, names, target_name = upload.classes, upload.feature_names, upload.target_name
    else:
        if setup.dataset == "custom":
            x, y, added_x, added_y = added_x, added_y, added_x[:0], added_y[:0]
        else:
            x, y = spec.make(setup.n, setup.noise, setup.classes, setup.seed)
        classes = list(range(class_count(setup, upload))) if task == "classification" else []
        names = ["x"] if inputs == 1 else ["x", "y"]
        target_name = "label" if task == "classification" else ("y" if inputs == 1 else "value")
    x, y = xp.asarray(x, dtype=xp.float32), _as_targets(y, task)
    problem = _problem(setup, x, y, task, len(classes))
    if problem is None:
        stratify = y if task == "classification" else None
        (x_train, y_train), (x_test, y_test) = data.train_val_split(
            x, y, val_fraction=setup.test, seed=0, stratify=stratify
        )
        if len(x_test) == 0 or len(x_train) == 0:
            problem = f"{spec.label}: too few points to set {setup.test:.0%} aside for testing"
    if problem is not None:
        x_train, y_train, x_test, y_test = x, y, x[:0], y[:0]
    x_train = xp.concatenate([x_train, added_x])
    y_train = xp.concatenate([y_train, added_y])
    x_all, y_all = xp.concatenate([x, added_x]), xp.concatenate([y, added_y])
    if len(x_train):
        standardizer = data.Standardizer.fit(x_train, per_feature=True)
    else:
        standardizer = data.Standardizer(xp.zeros(inputs, xp.float32), xp.ones(inputs, xp.float32))
    mean = std = None
    if task == "regression" and len(y_train):
        mean, std = (
            float(y_train.astype(xp.float64).mean()),
            float(y_train.astype(xp.float64).std()),
        )
        if not std > 0 and problem is None:
            problem = "every training target has the same value: there is nothing to learn"
        std = std if std > 0 else 1.0
    domain = CUSTOM_DOMAIN if setup.dataset == "custom" else _domain(x_all, y_all, inputs)
    return Points(
        task,
        inputs,
        x_train,
        y_train,
        x_test,
        y_test,
        x_all,
        y_all,
        classes,
        names,
        target_name,
        standardizer,
        domain,
        mean,
        std,
        problem,
        len(added_x),
    )


def _as_targets(y, task: str):
    return xp.asarray(y, dtype=xp.int64 if task == "classification" else xp.float32)


def _added_points(points: list, inputs: int, task: str):
    """The clicked points as arrays: ``[x, y, class or value]`` each (``[x, value]`` for one
    input)."""
    x = xp.array([p[:inputs] for p in points], dtype=xp.float32).reshape(len(points), inputs)
    return x, _as_targets([p[inputs] for p in points], task)


def _problem(setup, x, y, task: str, classes: int) -> str | None:
    """Why these points cannot be trained on yet (None: they can)."""
    if setup.dataset != "custom":
        return None
    if task == "classification":
        missing = [k for k in range(classes) if not (y == k).any()]
        if missing:
            return (
                f"your points: class {missing[0]} has no points yet; choose a class and click "
                "the picture to add some"
            )
    if len(x) < 2:
        return "your points: click the picture to add points"
    return None


def _domain(x, y, inputs: int) -> tuple:
    """A square view (10% margin) around the points; for one input, x against the target."""
    if not len(x):
        return CUSTOM_DOMAIN
    if inputs == 1:
        return _padded(x[:, 0]), _padded(y)
    low, high = x.min(axis=0), x.max(axis=0)
    centre, half = (low + high) / 2, float((high - low).max()) / 2 * 1.1 or 1.0
    return tuple((float(c - half), float(c + half)) for c in centre)


def _padded(values) -> tuple:
    low, high = float(values.min()), float(values.max())
    margin = (high - low) * 0.1 or 1.0
    return low - margin, high + margin
