"""What a run is made of: its data (loaded, scaled, standardised, split), network, loss,
optimizer and learning-rate schedule, each built from a :class:`~.config.Config`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import data, models, nn, optim
from ..train import LRSchedulerCallback
from .config import Config, RunError

IMAGE_SETS = ("digits", "mnist", "fashion-mnist", "faces")
POINT_SETS = {
    "spirals": data.spirals,
    "moons": data.moons,
    "circles": data.circles,
    "xor": data.xor,
    "blobs": data.blobs,
}
DATASETS = IMAGE_SETS + tuple(POINT_SETS)
LOSSES = ("cross-entropy", "mse")
SCHEDULES = ("none", "cosine", "step", "onecycle")


def _choose(name: str, value: str, choices) -> None:
    if value not in choices:
        raise RunError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")


def check_choices(config: Config) -> None:
    """Refuse names that are not among the choices (data set, loss, optimizer, schedule,
    activation) and a data folder that does not exist, before any work is done."""
    if config.data_dir is not None and not config.download and not Path(config.data_dir).is_dir():
        raise RunError(f"--data-dir {config.data_dir}: no such folder")
    _choose("data set", config.dataset, DATASETS)
    _choose("loss", config.loss, LOSSES)
    _choose("optimizer", config.optimizer, OPTIMIZERS)
    _choose("schedule", config.schedule, SCHEDULES)
    _choose("activation", config.activation, models.ACTIVATIONS)


# -- data ----------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """Train/validation/test arrays ready for the network, and how raw inputs were turned into them."""

    train: tuple
    val: tuple | None
    test: tuple
    input_shape: tuple
    outputs: int
    preprocessing: dict


def load_raw(config: Config):
    """((x_train, y_train), (x_test, y_test), pixel_max) of the named data set, unprocessed."""
    name = config.dataset
    if name in ("mnist", "fashion-mnist"):
        loader = data.load_mnist if name == "mnist" else data.load_fashion_mnist
        train, test = loader(config.data_dir, download=config.download)
        return train, test, 255.0
    if name in ("digits", "faces"):
        x, y = data.load_digits() if name == "digits" else data.load_faces()
        test_fraction = 0.2 if name == "digits" else 0.25
        train, test = data.train_val_split(x, y, val_fraction=test_fraction, seed=0, stratify=y)
        return train, test, 16.0 if name == "digits" else 1.0
    if name in POINT_SETS:
        x, y = POINT_SETS[name](n=1000, seed=0)
        train, test = data.train_val_split(x, y, val_fraction=0.2, seed=0, stratify=y)
        return train, test, None
    raise RunError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")


def prepare(config: Config) -> Prepared:
    """Load, scale to [0, 1], standardise with training statistics, shape the targets, split."""
    (x_train, y_train), (x_test, y_test), pixel_max = load_raw(config)
    for what, array in (("training", x_train), ("test", x_test)):
        data.check_finite(array, f"{config.dataset}: the {what} inputs")
    classes = int(max(y_train.max(), y_test.max())) + 1
    if config.target is not None:
        if not 0 <= config.target < classes:
            raise RunError(
                f"--target {config.target} is not a class of {config.dataset} (0..{classes - 1})"
            )
        y_train, y_test = (data.one_vs_rest(y, config.target)[:, None] for y in (y_train, y_test))
        outputs = 1
    else:
        outputs = classes
        if config.loss == "mse":
            y_train, y_test = data.one_hot(y_train, classes), data.one_hot(y_test, classes)
    scale = pixel_max or 1.0
    standardizer = data.Standardizer.fit(x_train / scale)
    x_train, x_test = standardizer(x_train / scale), standardizer(x_test / scale)
    val = None
    if config.val_fraction:
        (x_train, y_train), val = data.train_val_split(
            x_train, y_train, val_fraction=config.val_fraction, seed=config.seed
        )
    preprocessing = {
        "pixel_max": pixel_max,
        **standardizer.to_dict(),
        "input_shape": list(x_train.shape[1:]),
        "target": config.target,
    }
    return Prepared(
        (x_train, y_train), val, (x_test, y_test), tuple(x_train.shape[1:]), outputs, preprocessing
    )


# -- model, loss, optimizer, schedule ------------------------------------------------------------

OPTIMIZERS = {
    "gd": (0.5, lambda ps, c, lr: optim.GD(ps, lr=lr)),
    "sgd": (0.05, lambda ps, c, lr: optim.SGD(ps, lr=lr, weight_decay=c.weight_decay)),
    "momentum": (
        0.05,
        lambda ps, c, lr: optim.SGD(ps, lr=lr, momentum=c.momentum, weight_decay=c.weight_decay),
    ),
    "nesterov": (
        0.05,
        lambda ps, c, lr: optim.SGD(
            ps, lr=lr, momentum=c.momentum, nesterov=True, weight_decay=c.weight_decay
        ),
    ),
    "adam": (1e-3, lambda ps, c, lr: optim.Adam(ps, lr=lr, weight_decay=c.weight_decay)),
    "adamw": (1e-3, lambda ps, c, lr: optim.AdamW(ps, lr=lr, weight_decay=c.weight_decay or 1e-2)),
    "rmsprop": (1e-3, lambda ps, c, lr: optim.RMSprop(ps, lr=lr, weight_decay=c.weight_decay)),
    "adagrad": (1e-2, lambda ps, c, lr: optim.Adagrad(ps, lr=lr, weight_decay=c.weight_decay)),
}


def build_model(config: Config, input_shape: tuple, outputs: int, batch_size: int | None = None):
    """``mlp`` (sizes from ``hidden``), ``cnn`` (LeNet-5) or a spec like ``conv8k3,pool2,fc64``.

    The spec is laid out and its memory checked (for ``batch_size`` examples a step, by default
    the config's) before any layer is built.
    """
    if config.model == "mlp":
        spec, option = models.mlp_spec(config.hidden, config.dropout), "--hidden"
    else:
        spec, option = (models.LENET5 if config.model == "cnn" else config.model), "--model"
    shown = ",".join(map(str, config.hidden)) if option == "--hidden" else config.model
    try:
        layers = models.plan(spec, input_shape, outputs, config.activation)
        batch = batch_size or config.batch_size or 1
        models.check_memory(models.footprint_of_plan(layers, input_shape), batch)
        return nn.Sequential(*(cls(**args) for cls, args, _ in layers))
    except ValueError as exc:
        raise RunError(f"{option} {shown}: {exc}") from None


def build_loss(config: Config, outputs: int) -> nn.Module:
    _choose("loss", config.loss, LOSSES)
    if config.loss == "mse":
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


def build_optimizer(config: Config, parameters) -> optim.Optimizer:
    _choose("optimizer", config.optimizer, OPTIMIZERS)
    default_lr, make = OPTIMIZERS[config.optimizer]
    return make(list(parameters), config, config.lr if config.lr is not None else default_lr)
