"""What a run is made of: its data (loaded, scaled, standardised, split), network, loss,
optimizer and learning-rate schedule, each built from a :class:`~.config.Config`."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .. import data, models, nn, optim
from ..creation import zeros
from ..train import LRSchedulerCallback
from . import tasks, text
from .config import OPTIMIZERS, OWN_DATA, TASK_DEFAULTS, TASKS, Config, RunError, optimizer_defaults

IMAGE_SETS = ("digits", "mnist", "fashion-mnist", "faces")
POINT_SETS = {
    "spirals": data.spirals,
    "moons": data.moons,
    "circles": data.circles,
    "xor": data.xor,
    "blobs": data.blobs,
}
DATASETS = IMAGE_SETS + tuple(POINT_SETS) + tasks.REGRESSION_SETS + text.TEXT_SETS
LOSSES = ("cross-entropy", "mse", "l1", "huber")
REGRESSION_LOSSES = ("mse", "l1", "huber")
SCHEDULES = ("none", "cosine", "step", "onecycle")
FOLDER_IMAGE_SIZE = (32, 32)  # (H, W) the pictures of a folder are resized to, in grey


def _choose(name: str, value: str, choices) -> None:
    if value not in choices:
        raise RunError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")


def check_choices(config: Config) -> None:
    """Refuse names that are not among the choices (data set, task, loss, optimizer, schedule,
    activation), settings that do not go together, and a data folder or file that does not
    exist, before any work is done."""
    if config.data_dir is not None and not config.download and not Path(config.data_dir).is_dir():
        raise RunError(f"--data-dir {config.data_dir}: no such folder")
    if config.data is not None or config.dataset in OWN_DATA:
        if config.data is None or config.dataset not in OWN_DATA:
            raise RunError(
                f"--data {config.data} goes with the data set 'csv', 'folder' or 'text' (not "
                f"{config.dataset})"
                if config.data is not None
                else f"the data set '{config.dataset}' needs --data FILE.csv, --data FOLDER or "
                "--data FILE.txt"
            )
        if not Path(config.data).exists():
            raise RunError(f"--data {config.data}: no such file or folder")
        if config.dataset == "folder":
            if not Path(config.data).is_dir():
                raise RunError(f"--data {config.data}: not a folder (of class folders of images)")
            if isinstance(config.target, str):
                raise RunError(
                    f"--target {config.target}: for a folder of images, --target K trains 'is "
                    "it class K or not' (K: the class's number, its folders in name order from 0)"
                )
        elif not Path(config.data).is_file():  # a FIFO or /dev/zero would be read without end
            raise RunError(f"--data {config.data}: not a regular file (a folder, FIFO or device)")
    else:
        _choose("data set", config.dataset, DATASETS)
        if isinstance(config.target, str):
            raise RunError(
                f"--target {config.target}: a column name needs --data FILE.csv (for a built-in "
                "data set, --target K trains 'is it a K or not')"
            )
    if config.task is not None:
        _choose("task", config.task, TASKS)
    if text.is_text(config):
        text.check_settings(config)
    if config.loss is not None:
        _choose("loss", config.loss, LOSSES)
    _choose("optimizer", config.optimizer, OPTIMIZERS)
    _check_optimizer_builds(config)
    _choose("schedule", config.schedule, SCHEDULES)
    _choose("activation", config.activation, models.ACTIVATIONS)


def _check_optimizer_builds(config: Config) -> None:
    """Refuse optimizer settings that are each in range but do not go together (SGD's
    ``nesterov`` without momentum), as the optimizer itself does, before any work is done."""
    try:
        build_optimizer(config, [nn.Parameter(zeros(1))])
    except ValueError as exc:
        raise RunError(f"--optimizer {config.optimizer}: {exc}") from None


def check_task(config: Config, task: str) -> None:
    """Refuse settings that the task (once the data has decided it) cannot use."""
    if task == "regression":
        if config.loss not in (None, *REGRESSION_LOSSES):
            raise RunError(
                f"--loss {config.loss} is for classes; a regression takes "
                f"{', '.join(REGRESSION_LOSSES)}"
            )
        if isinstance(config.target, int):
            raise RunError(
                f"--target {config.target} trains 'is it a {config.target} or not', a "
                f"classification; {config.dataset} is a regression"
            )
    elif config.loss in ("l1", "huber"):
        raise RunError(
            f"--loss {config.loss} is for regression; a classification takes cross-entropy or mse"
        )


# -- data ----------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """Train/validation/test arrays ready for the network, and how raw inputs were turned into them.

    For a regression, the targets are standardised and ``target_std`` is the scale they were
    divided by (see :mod:`.tasks`).
    """

    train: tuple
    val: tuple | None
    test: tuple
    input_shape: tuple
    outputs: int
    preprocessing: dict
    task: str = "classification"
    target_std: float | None = None


def load_table(config: Config) -> tasks.Table:
    """The named data set (or CSV file), split into training and test examples, unprocessed."""
    name = config.dataset
    if name == "csv":
        return tasks.load_csv(config)
    if name == "folder":
        return load_image_folder(config)
    if name in tasks.REGRESSION_SETS:
        return tasks.load_regression_set(config)
    if name in ("mnist", "fashion-mnist"):
        loader = data.load_mnist if name == "mnist" else data.load_fashion_mnist
        train, test = loader(config.data_dir, download=config.download)
        return tasks.Table(train, test, "classification", 255.0)
    if name in ("digits", "faces"):
        x, y = data.load_digits() if name == "digits" else data.load_faces()
        test_fraction = 0.2 if name == "digits" else 0.25
        train, test = data.train_val_split(x, y, val_fraction=test_fraction, seed=0, stratify=y)
        return tasks.Table(train, test, "classification", 16.0 if name == "digits" else 1.0)
    if name in POINT_SETS:
        x, y = POINT_SETS[name](n=1000, seed=0)
        train, test = data.train_val_split(x, y, val_fraction=0.2, seed=0, stratify=y)
        return tasks.Table(train, test, "classification", None)
    raise RunError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")


def load_image_folder(config: Config) -> tasks.Table:
    """The user's folder of class folders of images (``data``), as grey images of
    :data:`FOLDER_IMAGE_SIZE`, split into training and test examples (seed 0; each class in
    proportion). Files that are not readable images are skipped and named on stderr."""
    folder = data.read_image_folder(config.data, FOLDER_IMAGE_SIZE)
    if folder.skipped:
        named = [str(path.relative_to(config.data)) for path, _ in folder.skipped[:5]]
        more = len(folder.skipped) - len(named)
        print(
            f"{config.data}: skipped {len(folder.skipped)} file(s) that are not readable images: "
            f"{', '.join(named)}{f' and {more} more' if more else ''}",
            file=sys.stderr,
        )
    train, test = data.train_val_split(
        folder.images, folder.labels, val_fraction=0.2, seed=0, stratify=folder.labels
    )
    return tasks.Table(train, test, "classification", 255.0, classes=folder.classes)


def load_raw(config: Config):
    """((x_train, y_train), (x_test, y_test), pixel_max) of the named data set, unprocessed."""
    table = load_table(config)
    return table.train, table.test, table.pixel_max


def prepare(config: Config, recorded: dict | None = None) -> Prepared:
    """Load, scale to [0, 1], standardise with training statistics, shape the targets, split.

    ``recorded``: the preprocessing a trained run saved; its statistics are used instead of
    measuring them again (so a run is evaluated on inputs prepared exactly as in training).
    """
    if text.is_text(config):
        return Prepared(**text.prepare_text(config, recorded))
    where = config.data if config.dataset in OWN_DATA else config.dataset
    table = tasks.settle_task(load_table(config), config, where)
    (x_train, y_train), (x_test, y_test) = table.train, table.test
    for what, array in (("training", x_train), ("test", x_test)):
        data.check_finite(array, f"{where}: the {what} inputs")
    check_task(config, table.task)
    extra: dict = {"task": table.task}
    target_std = None
    if table.task == "regression":
        mean, target_std = tasks.target_scaling(y_train, where, recorded)
        y_train, y_test = (
            tasks.standardised_targets(y, mean, target_std) for y in (y_train, y_test)
        )
        extra |= {"target_mean": mean, "target_std": target_std}
        outputs = 1
    else:
        classes = len(table.classes) or int(max(y_train.max(), y_test.max())) + 1
        if isinstance(config.target, int):
            if not 0 <= config.target < classes:
                raise RunError(
                    f"--target {config.target} is not a class of {where} (0..{classes - 1})"
                )
            y_train, y_test = (
                data.one_vs_rest(y, config.target)[:, None] for y in (y_train, y_test)
            )
            outputs = 1
        else:
            outputs = classes
            if config.loss == "mse":
                y_train, y_test = data.one_hot(y_train, classes), data.one_hot(y_test, classes)
        if table.classes:
            extra["classes"] = table.classes
    if table.tabular:
        extra |= {"feature_names": table.feature_names, "target_name": table.target_name}
        if recorded is None:  # the range predict compares new inputs with
            extra["feature_range"] = [x_train.min(axis=0).tolist(), x_train.max(axis=0).tolist()]
    if table.sha256:
        extra["data_sha256"] = table.sha256
    scale = table.pixel_max or 1.0
    if recorded is not None:
        standardizer = data.Standardizer.from_dict(recorded)
    else:
        standardizer = data.Standardizer.fit(x_train / scale, per_feature=table.tabular)
    x_train, x_test = standardizer(x_train / scale), standardizer(x_test / scale)
    val = None
    if config.val_fraction:
        (x_train, y_train), val = data.train_val_split(
            x_train, y_train, val_fraction=config.val_fraction, seed=config.seed
        )
    preprocessing = {
        "pixel_max": table.pixel_max,
        **standardizer.to_dict(),
        "input_shape": list(x_train.shape[1:]),
        "target": config.target if isinstance(config.target, int) else None,
        **extra,
    }
    return Prepared(
        (x_train, y_train),
        val,
        (x_test, y_test),
        tuple(x_train.shape[1:]),
        outputs,
        preprocessing,
        table.task,
        target_std,
    )


# -- model, loss, optimizer, schedule ------------------------------------------------------------


def build_model(config: Config, input_shape: tuple, outputs: int, batch_size: int | None = None):
    """``mlp`` (sizes from ``hidden``, by default the task's), ``cnn`` (LeNet-5) or a spec like
    ``conv8k3,pool2,fc64``; the output layer is linear (``outputs`` neurons).

    The spec is laid out and its memory checked (for ``batch_size`` examples a step, by default
    the config's) before any layer is built.
    """
    config = config.with_task_defaults(config.task or "classification")
    if config.task == "text":
        return text.build_text_model(config, outputs)
    hidden = config.hidden
    if config.model == "mlp":
        spec, option = models.mlp_spec(hidden, config.dropout), "--hidden"
    else:
        spec, option = (models.LENET5 if config.model == "cnn" else config.model), "--model"
    shown = (",".join(map(str, hidden)) or "none") if option == "--hidden" else config.model
    try:
        layers = models.plan(spec, input_shape, outputs, config.activation)
        batch = batch_size or config.batch_size or 1
        models.check_memory(models.footprint_of_plan(layers, input_shape), batch)
        return nn.Sequential(*(cls(**args) for cls, args, _ in layers))
    except ValueError as exc:
        raise RunError(f"{option} {shown}: {exc}") from None


REGRESSION_LOSS_MODULES = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}


def build_loss(config: Config, outputs: int, task: str = "classification") -> nn.Module:
    """The loss for the task: for regression ``mse``, ``l1`` or ``huber`` (its delta 1 is one
    standard deviation of the targets, which are standardised); for classes cross-entropy (a
    sigmoid's for one output) or ``mse`` on one-hot targets; for text the cross-entropy of each
    next character."""
    if task == "text":
        return text.CharacterLoss()
    loss = config.loss or TASK_DEFAULTS[task]["loss"]
    _choose("loss", loss, REGRESSION_LOSSES if task == "regression" else ("cross-entropy", "mse"))
    if task == "regression":
        return REGRESSION_LOSS_MODULES[loss]()
    if loss == "mse":
        return nn.MSELoss()
    if outputs == 1:
        return nn.BCEWithLogitsLoss()
    return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)


def build_schedule(config: Config, optimizer, steps_per_epoch: int) -> list:
    """The learning-rate schedule as a callback list (empty for 'none')."""
    _choose("schedule", config.schedule, SCHEDULES)
    s = optim.lr_scheduler
    if config.schedule == "none":
        return []
    if config.schedule == "cosine":
        return [LRSchedulerCallback(s.CosineAnnealingLR(optimizer, T_max=config.epochs))]
    if config.schedule == "step":
        step = s.StepLR(optimizer, step_size=max(1, config.epochs // 3), gamma=0.1)
        return [LRSchedulerCallback(step)]
    top = optimizer.param_groups[0]["lr"] * 10
    cycle = s.OneCycleLR(
        optimizer, max_lr=top, epochs=config.epochs, steps_per_epoch=steps_per_epoch
    )
    return [LRSchedulerCallback(cycle, per="batch")]


def default_lr(optimizer: str) -> float:
    """The learning rate ``optimizer`` trains with when none is given (its class's
    ``suggested_lr``)."""
    _choose("optimizer", optimizer, OPTIMIZERS)
    return OPTIMIZERS[optimizer][0].suggested_lr


def optimizer_settings(config: Config) -> tuple[type, dict]:
    """The optimizer class a run uses and its settings: the learning rate (by default the
    class's suggested one) and the settings the config gives, the others the preset's or the
    class's defaults."""
    _choose("optimizer", config.optimizer, OPTIMIZERS)
    cls = OPTIMIZERS[config.optimizer][0]
    values = optimizer_defaults(config.optimizer) | config.optimizer_settings
    values["lr"] = config.lr if config.lr is not None else cls.suggested_lr
    return cls, values


def build_optimizer(config: Config, parameters) -> optim.Optimizer:
    cls, values = optimizer_settings(config)
    return optim.spec.build(cls, list(parameters), values)
