"""Run folders: what ``chainrule train`` does, step by step, and how its results are read back.

A run folder holds ``config.json`` (the settings), ``model.safetensors`` + ``model.json`` (the
trained network and how to feed it), ``history.csv``, ``metrics.json`` and
``checkpoint.safetensors`` (for ``--resume``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from . import data, io, models, nn, optim
from .backend import manual_seed, xp
from .data.loader import DataLoader
from .train import CSVLogger, LRScheduler, ModelCheckpoint, TerminateOnNaN, evaluate, fit, predict


class RunError(Exception):
    """A problem with the user's request (bad option, missing folder): one clear line."""


@dataclass
class Config:
    """The settings of a training run (command-line options or a TOML file)."""

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    model: str = "mlp"
    hidden: tuple = (256, 128)
    activation: str = "relu"
    dropout: float = 0.0
    loss: str = "cross-entropy"
    label_smoothing: float = 0.1
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    batch_size: int | None = 32
    epochs: int = 30
    target: int | None = None
    seed: int = 0
    val_fraction: float = 0.1
    checkpoint_every: int | None = None
    out: str | None = None

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RunError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = dict(values)
        if isinstance(values.get("hidden"), str):
            values["hidden"] = parse_sizes(values["hidden"])
        if values.get("hidden") is not None:
            values["hidden"] = tuple(values["hidden"])
        return cls(**values)


def parse_sizes(text: str) -> tuple:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise RunError(
            f"--hidden must be comma-separated integers like 256,128, got {text!r}"
        ) from None


# -- data ----------------------------------------------------------------------------------------

IMAGE_SETS = ("digits", "mnist", "fashion-mnist", "faces")
POINT_SETS = {
    "spirals": data.spirals,
    "moons": data.moons,
    "circles": data.circles,
    "xor": data.xor,
    "blobs": data.blobs,
}
DATASETS = IMAGE_SETS + tuple(POINT_SETS)


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


# -- model, loss, optimizer ----------------------------------------------------------------------

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
LOSSES = ("cross-entropy", "mse")


def build_model(config: Config, input_shape: tuple, outputs: int) -> nn.Sequential:
    """``mlp`` (sizes from ``hidden``), ``cnn`` (LeNet-5) or a spec like ``conv8k3,pool2,fc64``."""
    try:
        if config.model == "mlp":
            return models.mlp(
                input_shape, config.hidden, outputs, config.activation, config.dropout
            )
        spec = models.LENET5 if config.model == "cnn" else config.model
        return models.from_spec(spec, input_shape, outputs, config.activation)
    except ValueError as exc:
        raise RunError(f"--model {config.model}: {exc}") from None


def build_loss(config: Config, outputs: int) -> nn.Module:
    if config.loss not in LOSSES:
        raise RunError(f"unknown loss {config.loss!r}; choose from {', '.join(LOSSES)}")
    if config.loss == "mse":
        return nn.MSELoss()
    if outputs == 1:
        return nn.BCEWithLogitsLoss()
    return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)


SCHEDULES = ("none", "cosine", "step", "onecycle")


def build_schedule(config: Config, optimizer, steps_per_epoch: int) -> list:
    """The learning-rate schedule as a callback list (empty for 'none')."""
    s = optim.lr_scheduler
    if config.schedule == "none":
        return []
    if config.schedule == "cosine":
        return [LRScheduler(s.CosineAnnealingLR(optimizer, T_max=config.epochs))]
    if config.schedule == "step":
        return [LRScheduler(s.StepLR(optimizer, step_size=max(1, config.epochs // 3), gamma=0.1))]
    if config.schedule == "onecycle":
        top = optimizer.param_groups[0]["lr"] * 10
        cycle = s.OneCycleLR(
            optimizer, max_lr=top, epochs=config.epochs, steps_per_epoch=steps_per_epoch
        )
        return [LRScheduler(cycle, per="batch")]
    raise RunError(f"unknown schedule {config.schedule!r}; choose from {', '.join(SCHEDULES)}")


def build_optimizer(config: Config, parameters) -> optim.Optimizer:
    if config.optimizer not in OPTIMIZERS:
        raise RunError(
            f"unknown optimizer {config.optimizer!r}; choose from {', '.join(OPTIMIZERS)}"
        )
    default_lr, make = OPTIMIZERS[config.optimizer]
    return make(list(parameters), config, config.lr if config.lr is not None else default_lr)


# -- train, evaluate, predict --------------------------------------------------------------------


def train(config: Config, resume: bool = False, progress: bool = True) -> dict:
    """Train as ``config`` says and write the run folder; returns the metrics written.

    With ``resume``, continue the run in ``config.out`` from its checkpoint (``config`` should be
    that run's saved config, see :func:`saved_config`).
    """
    out = Path(config.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    checkpoint = out / "checkpoint.safetensors"
    state = None
    if resume:
        if not checkpoint.exists():
            raise RunError(
                f"--resume: no checkpoint in {out} (train into it first with --out {out})"
            )
        state = ModelCheckpoint.load(checkpoint)
    elif checkpoint.exists():
        raise RunError(f"{out} already holds a run; pass --resume to continue it, or another --out")
    _check(config)
    prepared = prepare(config)
    manual_seed(config.seed)
    model = build_model(config, prepared.input_shape, prepared.outputs)
    loss_fn = build_loss(config, prepared.outputs)
    optimizer = build_optimizer(config, model.parameters())
    out.mkdir(parents=True, exist_ok=True)
    io.write_json(out / "config.json", _jsonable(dataclasses.asdict(config)))
    batch_size = config.batch_size or len(prepared.train[0])  # None: the whole set, one batch
    loader = DataLoader(prepared.train, batch_size, shuffle=True, seed=config.seed)
    callbacks = [
        TerminateOnNaN(),
        CSVLogger(out / "history.csv"),
        *build_schedule(config, optimizer, len(loader)),
        ModelCheckpoint(checkpoint, every_n_batches=config.checkpoint_every),
    ]
    started = time.perf_counter()
    history = fit(
        model,
        loss_fn,
        optimizer,
        loader,
        epochs=config.epochs,
        validation_data=prepared.val,
        callbacks=callbacks,
        progress=progress,
        resume=state,
    )
    train_seconds = time.perf_counter() - started
    io.save(
        model,
        out / "model",
        metadata={"preprocessing": prepared.preprocessing, "dataset": config.dataset},
    )
    test = evaluate(model, loss_fn, prepared.test)
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "epochs": len(history),
        "train_seconds": train_seconds,
        "dataset": config.dataset,
        "parameters": model.num_parameters(),
        "out": str(out),
    }
    if history.rows and "val_accuracy" in history.rows[-1]:
        metrics["val_accuracy"] = history.rows[-1]["val_accuracy"]
    io.write_json(out / "metrics.json", metrics)
    return metrics


def saved_config(run_dir) -> Config:
    """The config a run folder was trained with."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunError(f"{run_dir}: no config.json, not a chainrule run folder")
    return Config.from_dict(io.read_json(path))


def _check(config: Config) -> None:
    if config.epochs < 1:
        raise RunError(f"--epochs must be >= 1, got {config.epochs}")
    if config.batch_size is not None and config.batch_size < 1:
        raise RunError(f"--batch-size must be >= 1, got {config.batch_size}")
    if config.lr is not None and config.lr <= 0:
        raise RunError(f"--lr must be positive, got {config.lr}")
    if config.dataset not in DATASETS:
        raise RunError(f"unknown data set {config.dataset!r}; choose from {', '.join(DATASETS)}")
    if config.data_dir is not None and not config.download and not Path(config.data_dir).is_dir():
        raise RunError(f"--data-dir {config.data_dir}: no such folder")
    if not 0 <= config.val_fraction < 1:
        raise RunError(f"--val-fraction must be in [0, 1), got {config.val_fraction}")


def _jsonable(values: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def load_run(run_dir) -> tuple:
    """(model, config, metadata) of a run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "model.safetensors").exists():
        raise RunError(f"{run_dir}: no trained model here (expected model.safetensors)")
    model = io.load(run_dir / "model")
    return model, saved_config(run_dir), io.read_metadata(run_dir / "model")


def evaluate_run(run_dir, dataset: str | None = None, data_dir: str | None = None) -> dict:
    """Test loss and accuracy of a trained run (on its own data set, or another of the same shape)."""
    model, config, _ = load_run(run_dir)
    config = dataclasses.replace(
        config,
        dataset=dataset or config.dataset,
        data_dir=data_dir or config.data_dir,
        val_fraction=0.0,
    )
    prepared = prepare(config)
    return evaluate(model, build_loss(config, prepared.outputs), prepared.test)


def read_input(path: Path, preprocessing: dict):
    """One input for the network from a PNG/JPEG (grayscale) or .npy file, preprocessed as in
    training."""
    expected = tuple(preprocessing["input_shape"])
    pixel_max = preprocessing["pixel_max"] or 1.0
    if path.suffix == ".npy":
        values = xp.load(path, allow_pickle=False).astype(xp.float32)
    else:
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError:
            raise RunError("reading images needs Pillow: pip install pillow") from None
        try:
            with Image.open(path) as image:
                values = xp.asarray(image.convert("L"), dtype=xp.float32) / 255.0 * pixel_max
        except (UnidentifiedImageError, OSError) as exc:
            raise RunError(f"{path}: not a readable image ({exc})") from None
    if values.shape != expected:
        raise RunError(f"{path}: has shape {values.shape}, but the model expects {expected} inputs")
    standardizer = data.Standardizer.from_dict(preprocessing)
    return standardizer(values / pixel_max)


def predict_files(run_dir, paths, top: int = 3) -> list[dict]:
    """For each file: the predicted class (the most activated output neuron) and top probabilities."""
    model, _, metadata = load_run(run_dir)
    preprocessing = metadata["preprocessing"]
    results = []
    for path in map(Path, paths):
        if not path.is_file():
            raise RunError(f"{path}: no such file")
        output = predict(model, read_input(path, preprocessing)[None])[0]
        if output.shape == (1,):  # one-vs-rest: a single logit
            p = float(1 / (1 + xp.exp(-output[0])))
            probabilities = xp.array([1 - p, p])
        else:
            shifted = xp.exp(output - output.max())
            probabilities = shifted / shifted.sum()
        order = xp.argsort(-probabilities)[:top]
        results.append(
            {
                "file": str(path),
                "prediction": int(order[0]),
                "top": [(int(i), float(probabilities[i])) for i in order],
            }
        )
    return results
