"""The settings of a training run, each checked for type and range with a message naming it.

Settings come from command-line options, a TOML file (``--config``) or a run folder's
``config.json``; all three go through :meth:`Config.from_dict`, so ``epochs = true`` in a TOML
file, ``--checkpoint-every -1`` and a hand-edited ``"lr": "fast"`` get the same clear refusal.

A few settings default to "what the task needs" (``None``): ``hidden`` and ``loss`` are chosen
once the data has said whether the run is a classification or a regression (see
:data:`TASK_DEFAULTS`), and the run's ``config.json`` records the values chosen.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .. import optim

MAX_HIDDEN_LAYERS = 256
MAX_SEED = 2**63 - 1
TASKS = ("classification", "regression", "text")
# hidden layers and loss when not given: small tabular regression sets (diabetes: 354 training
# examples) overfit two wide layers, while one hidden layer of 128 still fits the bumps
TASK_DEFAULTS = {
    "classification": {"hidden": (256, 128), "loss": "cross-entropy"},
    "regression": {"hidden": (128,), "loss": "mse"},
    "text": {"hidden": (128,), "loss": "cross-entropy"},  # one LSTM layer of 128 (see .text)
}


# your own data (``--data``): a CSV file, a folder with one subfolder of images per class, or a
# text file (``.txt``, or any file with ``--task text``) for a character model
OWN_DATA = ("csv", "folder", "text")
TEXT_MODEL = "lstm"  # the network for a text run when --model is not given
TEXT_SEQUENCE_LENGTH = 32  # characters a text run's model reads at a time, when not given
# a text Transformer's width when --hidden is not given: at 128 (209,000 weights) it memorised the
# 1,162 built-in names within 10 of its 30 epochs (test perplexity 25.2); at 64, 12.8
TEXT_TRANSFORMER_HIDDEN = (64,)
# the network for a folder of images (resized to 32x32 grey) when --model is not given
FOLDER_MODEL = "conv16k3p1,pool2,conv32k3p1,pool2,fc64"


class RunError(Exception):
    """A problem with the user's request (bad option, missing folder): one clear line."""


def _optimizer_names() -> dict:
    """``--optimizer`` names: each optimizer fit can drive, by its lower-case name,
    and each of its presets (SGD's ``momentum`` and ``nesterov``), as (class, preset)."""
    names = {}
    for name, cls in optim.stepping_optimizers().items():
        names[name] = (cls, {})
        names.update({preset: (cls, values) for preset, values in cls.presets.items()})
    return names


OPTIMIZERS = _optimizer_names()
"""--optimizer name -> (optimizer class, preset settings)."""
OPTIMIZER_SETTINGS = {
    name: setting
    for name, setting in optim.spec.settings_by_name(optim.stepping_optimizers().values()).items()
    if name != "lr"  # a setting of its own: its default is the chosen optimizer's
}
"""Every optimizer's settings but the learning rate (the command line's flags and the keys of a
TOML file, read and written flat: ``beta2 = 0.99``), as the optimizer classes describe them."""


@dataclass
class Config:
    """The settings of a training run (command-line options or a TOML file)."""

    dataset: str = "digits"
    data: str | None = None
    data_dir: str | None = None
    download: bool = False
    task: str | None = None
    model: str | None = None
    hidden: tuple | None = None
    activation: str = "relu"
    dropout: float = 0.0
    loss: str | None = None
    label_smoothing: float = 0.0
    optimizer: str = "adam"
    lr: float | None = None
    # the optimizer's settings given (flat names, each checked against the optimizer's spec);
    # those not given are its defaults (or its preset's)
    optimizer_settings: dict = field(default_factory=dict)
    schedule: str = "none"
    batch_size: int | None = 32
    epochs: int = 30
    target: int | str | None = None
    seed: int = 0
    val_fraction: float = 0.1
    checkpoint_every: int | None = None
    out: str | None = None
    sync_batchnorm: bool = False
    sequence_length: int | None = None

    @classmethod
    def from_dict(cls, values: dict, source: str | None = None, recorded: bool = False) -> Config:
        """Settings from a dict, each checked (see :data:`RULES`; the optimizer's against its
        spec, :data:`OPTIMIZER_SETTINGS`).

        ``source`` names where they came from (a file) for the messages; without it they are
        named as command-line options (``--batch-size``). ``recorded``: a run's own record
        (``config.json``, a checkpoint's), which may predate the optimizer specs. A CSV file
        (``data``) given without a ``dataset`` makes the data set ``"csv"``, a folder (of class
        subfolders of images) the data set ``"folder"``; given with another data set, it is
        refused.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"optimizer_settings"}
        unknown = sorted(set(values) - known - set(OPTIMIZER_SETTINGS))
        if unknown:
            where = f"{source}: " if source else ""
            raise RunError(
                f"{where}unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))} "
                f"and the optimizer's settings ({', '.join(OPTIMIZER_SETTINGS)})"
            )
        checked = {}
        for name, value in values.items():
            if name not in OPTIMIZER_SETTINGS:
                checked[name] = check_setting(name, value, _label(name, source))
        optimizer = checked.get("optimizer", cls.optimizer)
        given = {k: v for k, v in values.items() if k in OPTIMIZER_SETTINGS}
        if recorded:
            given = _from_before_specs(optimizer, given)
        checked["optimizer_settings"] = _check_optimizer_settings(optimizer, given, source)
        if checked.get("task") == "text" and "data" not in checked:
            checked.setdefault("dataset", "names")  # the built-in text
        if checked.get("data") is not None:
            own = _own_data(Path(checked["data"]), checked.get("task"))
            given = checked.setdefault("dataset", own)
            if given not in OWN_DATA:
                where = f"{source}: " if source else ""
                raise RunError(
                    f"{where}dataset {given} and data {checked['data']}: choose one (data is "
                    "your own CSV file or folder of images, dataset a built-in set)"
                )
        return cls(**checked)

    def with_task_defaults(self, task: str) -> Config:
        """These settings with the ``None`` ones that depend on the task (and the network, on
        the data: a small CNN for a folder of images, an LSTM for text, else an MLP) filled
        in."""
        defaults = {"model": FOLDER_MODEL if self.dataset == "folder" else "mlp"}
        if task == "text":
            defaults = {"model": TEXT_MODEL, "sequence_length": TEXT_SEQUENCE_LENGTH}
        defaults |= TASK_DEFAULTS[task]
        if task == "text" and (self.model or TEXT_MODEL) == "transformer":
            defaults["hidden"] = TEXT_TRANSFORMER_HIDDEN
        chosen = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        return dataclasses.replace(self, task=task, **chosen)

    def with_values_used(self, default_lr: float, train_size: int) -> Config:
        """These settings with the learning rate, batch size and optimizer settings the run
        uses in place of their defaults (``None``: the optimizer's rate, the whole training set;
        the optimizer's own defaults), so that ``config.json`` and ``info`` say what was
        trained."""
        lr = self.lr if self.lr is not None else default_lr
        settings = optimizer_defaults(self.optimizer) | self.optimizer_settings
        return dataclasses.replace(
            self, lr=lr, batch_size=self.batch_size or train_size, optimizer_settings=settings
        )

    def to_dict(self) -> dict:
        """The settings as JSON values (what ``config.json`` holds), the optimizer's flat."""
        values = dataclasses.asdict(self)
        values |= values.pop("optimizer_settings")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _label(name: str, source: str | None) -> str:
    """Setting ``name`` as a message names it: in its file, or as its command-line option."""
    return f"{source}: {name}" if source else "--" + name.replace("_", "-")


def optimizer_defaults(optimizer: str) -> dict:
    """The settings (but the learning rate) that ``optimizer`` takes when none is given: its
    class's defaults, and its preset's values (``nesterov``: momentum 0.9)."""
    cls, preset = OPTIMIZERS[optimizer]
    defaults = {s.name: s.default for s in optim.spec.settings_of(cls) if s.name != "lr"}
    return defaults | preset


def _check_optimizer_settings(optimizer: str, given: dict, source: str | None = None) -> dict:
    """``given`` (flat names) checked against ``optimizer``'s spec: RunError naming a setting it
    does not have (and those it has), or a value out of its range. An unknown optimizer's are
    passed on unchecked: its name is refused by ``check_choices``."""
    if optimizer not in OPTIMIZERS:
        return dict(given)
    own = {s.name: s for s in optim.spec.settings_of(OPTIMIZERS[optimizer][0])}
    checked = {}
    for name, value in given.items():
        label = _label(name, source)
        if name not in own:
            raise RunError(
                f"{label}: the optimizer {optimizer} has no such setting; its settings are "
                f"{', '.join(own)}"
            )
        try:
            checked[name] = own[name].check(value, label)
        except ValueError as exc:
            raise RunError(str(exc)) from None
    return checked


def _from_before_specs(optimizer: str, given: dict) -> dict:
    """A run's record written before the optimizers' settings came from their specs held
    ``momentum`` (0.9, used by the ``momentum`` and ``nesterov`` presets alone) and
    ``weight_decay`` (used where not 0) whatever the optimizer, and no other setting: the
    settings it was trained with. A newer record holds all the optimizer's settings."""
    if set(given) != {"momentum", "weight_decay"} or optimizer not in OPTIMIZERS:
        return given
    cls, preset = OPTIMIZERS[optimizer]
    trained = {"momentum": given["momentum"]} if "momentum" in preset else {}
    if given["weight_decay"] and any(s.name == "weight_decay" for s in cls.settings):
        trained["weight_decay"] = given["weight_decay"]
    return trained


def _own_data(path: Path, task: str | None) -> str:
    """The kind of the user's ``--data``: a folder of images, a text file (``.txt``, or any file
    with ``--task text``), else a CSV file."""
    if path.is_dir():
        return "folder"
    return "text" if task == "text" or path.suffix.lower() == ".txt" else "csv"


def command_line(config: Config) -> str:
    """The ``chainrule train`` command for ``config``: ``--out`` and the settings that are not
    the defaults (those of its task, once the data has chosen it)."""
    defaults = Config().with_task_defaults(config.task) if config.task else Config()
    defaults.task = None  # a task the data chose and one given are alike in a config: say it
    words = ["chainrule", "train"]
    for f in dataclasses.fields(Config):
        value = getattr(config, f.name)
        if f.name in ("out", "optimizer_settings") or value in (getattr(defaults, f.name), None):
            continue
        words += _option(f.name, value)
    own_defaults = optimizer_defaults(config.optimizer) if config.optimizer in OPTIMIZERS else {}
    for name, value in config.optimizer_settings.items():
        if value != own_defaults.get(name):
            words += _option(name, value)
    if config.dataset in OWN_DATA:  # --data says it
        words.remove("--dataset"), words.remove(config.dataset)
    return " ".join([*words, "--out", shlex.quote(str(config.out))] if config.out else words)


def _option(name: str, value) -> list[str]:
    """Setting ``name`` as command-line words: ``--epochs 5``, ``--amsgrad``, ``--no-download``."""
    option = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [option if value else "--no-" + option[2:]]
    shown = (",".join(map(str, value)) or "none") if isinstance(value, tuple) else value
    return [option, shlex.quote(f"{shown:g}" if isinstance(shown, float) else str(shown))]


def _number(value, integer: bool):
    """``value`` if it is an int (or, unless ``integer``, a float); None otherwise. Booleans are
    not numbers here, although Python counts them as ints."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (not integer and isinstance(value, float)):
        return value
    return None


def _range(low=None, high=None, low_open=False, high_open=False):
    def within(v) -> bool:
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or (v < high if high_open else v <= high)

    return within


def _integer(low, high=None):
    return (
        "int",
        _range(low, high),
        f"a whole number >= {low}" + (f" and <= {high}" if high is not None else ""),
    )


def _real(check, description):
    return "float", check, description


# name -> (kind, range check, what it must be); "optional" adds None
RULES = {
    "dataset": ("str", None, "a data set name"),
    "data": (
        "optional str",
        None,
        "a CSV file, a folder of class folders of images or a text file",
    ),
    "data_dir": ("optional str", None, "a folder"),
    "download": ("bool", None, "true or false"),
    "task": ("optional str", None, "classification, regression or text"),
    "model": ("optional str", None, "mlp, cnn or a spec such as conv8k3,pool2,fc64"),
    "hidden": (
        "optional sizes",
        None,
        "hidden layer sizes such as [256, 128], '256,128' or 'none' (no hidden layer)",
    ),
    "activation": ("str", None, "an activation name"),
    "dropout": _real(_range(0, 1, high_open=True), "a number in [0, 1)"),
    "loss": ("optional str", None, "a loss name"),
    "label_smoothing": _real(_range(0, 1, high_open=True), "a number in [0, 1)"),
    "optimizer": ("str", None, "an optimizer name"),
    "lr": ("optional float", _range(0, low_open=True), "a positive number"),
    "schedule": ("str", None, "a schedule name"),
    "batch_size": ("batch", _range(1), "a whole number >= 1, or 'full'"),
    "epochs": _integer(1),
    "target": (
        "optional target",
        _range(0),
        "a class number >= 0 (one-vs-rest), or with data the name of the target column",
    ),
    "seed": _integer(0, MAX_SEED),
    "val_fraction": _real(_range(0, 1, high_open=True), "a number in [0, 1)"),
    "checkpoint_every": ("optional int", _range(1), "a whole number >= 1"),
    "out": ("optional str", None, "a folder"),
    "sync_batchnorm": ("bool", None, "true or false"),
    "sequence_length": ("optional int", _range(1, 4096), "a whole number in [1, 4096]"),
}


def check_setting(name: str, value, label: str):
    """``value`` checked and normalised for setting ``name``; RunError naming ``label`` if not."""
    kind, within, description = RULES[name]

    def refuse():
        shown = json.dumps(value, default=str)
        raise RunError(f"{label} must be {description}, got {shown[:80]}")

    if kind.startswith("optional"):
        if value is None:
            return None
        kind = kind.removeprefix("optional ")
    if kind == "batch":
        if isinstance(value, str) and value in ("full", "all", "none"):
            return None
        if value is None:
            return None
        kind = "int"
    if kind == "target":  # a class number, or a column name (a CSV header cell)
        if isinstance(value, str) and value.strip():
            return value
        kind = "int"
    if kind == "str":
        if not isinstance(value, str) or not value:
            refuse()
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            refuse()
        return value
    if kind == "sizes":
        try:
            sizes = parse_sizes(value) if isinstance(value, str) else value
        except RunError:
            refuse()
        if not isinstance(sizes, (list, tuple)) or len(sizes) > MAX_HIDDEN_LAYERS:
            refuse()
        if any(_number(s, integer=True) is None or s < 1 for s in sizes):
            refuse()
        return tuple(sizes)
    number = _number(value, integer=kind == "int")
    if number is None or (kind == "float" and not math.isfinite(number)):
        refuse()
    if within is not None and not within(number):
        refuse()
    return float(number) if kind == "float" else number


def parse_sizes(text: str) -> tuple:
    """``"256,128"`` -> ``(256, 128)``; ``"none"`` (or nothing) -> ``()``: no hidden layer."""
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise RunError(
            f"--hidden must be comma-separated integers like 256,128, got {text!r}"
        ) from None


# -- argparse types: the same rules for options checked by argparse itself ------------------------


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    return _bounded_int(text, 1)


def thread_count(text: str) -> int | str:
    """An argparse type: ``auto`` or a whole number >= 1."""
    return "auto" if text.strip().lower() == "auto" else _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    return _bounded_int(text, 0)


def _bounded_int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def target_choice(text: str) -> int | str:
    """An argparse type for ``--target``: a whole number is a class, anything else a column."""
    try:
        return int(text)
    except ValueError:
        return text


def learning_rate(text: str) -> float:
    """An argparse type for ``--lr``, the same in every command that has it: a finite number
    > 0, such as 0.01 or 1e-3."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number such as 0.01, got {text!r}")
    return value


def learning_rates(text: str) -> list[float]:
    """An argparse type for an ``--lr`` that compares rates: one or more learning rates (as
    :func:`learning_rate` reads them), separated by commas."""
    return [learning_rate(part) for part in text.split(",")]


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
