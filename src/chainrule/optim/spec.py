"""How an optimizer describes its hyper-parameters, so that nothing else restates them.

Each optimizer class lists its :class:`Setting`\\ s (``settings``): a name, the range a value
must lie in and a line of help; the default comes from the constructor's own signature. From
them the command line builds its ``--optimizer`` choices and flags, a TOML file its keys, the
playground its menus and controls, and the ``train.py`` it writes its optimizer call
(:func:`call_text`).

A setting's name is flat (``beta1``, ``beta2``) where the constructor takes a tuple
(``betas=(beta1, beta2)``): ``argument`` and ``index`` say where it goes.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Setting:
    """One hyper-parameter of an optimizer.

    Attributes:
        name: its flat name (``lr``, ``momentum``, ``beta1``).
        low, high: the range a value must lie in; ``low_open`` / ``high_open`` exclude the ends.
        help: one line a learner can read.
        argument, index: the constructor's argument when it differs from ``name``, and the
            position in it (``betas``, 0).
        default: the constructor's default (filled in from its signature by :func:`settings_of`).
        integer: a count (LBFGS's ``max_iter``): a whole number, passed on as an int.
    """

    name: str
    low: float = 0.0
    high: float = math.inf
    help: str = ""
    low_open: bool = False
    high_open: bool = False
    argument: str | None = None
    index: int | None = None
    default: float | bool | None = None
    integer: bool = False

    @property
    def kind(self) -> type:
        """``bool`` for a switch, ``int`` for a count, ``float`` for a number."""
        if isinstance(self.default, bool):
            return bool
        return int if self.integer else float

    def check(self, value, label: str | None = None) -> float | bool:
        """``value`` as this setting takes it, or ValueError naming the setting (as ``label``,
        such as ``--eps``, where given) and its range."""
        label = label or self.name
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{label} must be true or false, got {value!r:.40}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{label} must be a number, got {value!r:.40}")
        low_ok = value > self.low if self.low_open else value >= self.low
        high_ok = value < self.high if self.high_open else value <= self.high
        if not (math.isfinite(value) and low_ok and high_ok):
            raise ValueError(f"{label} must be in {self.range_text()}, got {value!r}")
        if self.integer:
            if value != int(value):
                raise ValueError(f"{label} must be a whole number, got {value!r}")
            return int(value)
        return float(value)

    def range_text(self) -> str:
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        high = "inf" if math.isinf(self.high) else f"{self.high:g}"
        return f"{left}{self.low:g}, {high}{right}"


# The settings most optimizers share, written once.
LR = Setting("lr", help="learning rate: how far each step goes downhill", low_open=True)
WEIGHT_DECAY = Setting("weight_decay", help="pulls every weight toward zero a little each step")
EPS = Setting("eps", 0.0, 1.0, "added to the denominator so it is never zero")
MOMENTUM = Setting("momentum", 0.0, 1.0, "how much of the last step carries on", high_open=True)
BETA1 = Setting("beta1", 0.0, 1.0, "decay of the gradient's running mean", False, True, "betas", 0)
BETA2 = Setting(
    "beta2", 0.0, 1.0, "decay of the squared gradient's running mean", False, True, "betas", 1
)
MAXIMIZE = Setting("maximize", help="climb the loss instead of descending it")


def settings_of(cls) -> tuple[Setting, ...]:
    """``cls.settings`` with each default taken from the constructor's signature."""
    parameters = inspect.signature(cls.__init__).parameters
    filled = []
    for setting in cls.settings:
        default = parameters[setting.argument or setting.name].default
        if setting.index is not None:
            default = default[setting.index]
        filled.append(replace(setting, default=default))
    return tuple(filled)


def settings_by_name(classes) -> dict[str, Setting]:
    """Every setting of the optimizer ``classes``, each name once: a setting several of them
    share (``eps``, ``weight_decay``) has one range and help, and takes its default here from
    the first class that has it."""
    found: dict[str, Setting] = {}
    for cls in classes:
        for setting in settings_of(cls):
            found.setdefault(setting.name, setting)
    return found


def arguments(cls, values: dict) -> dict:
    """The constructor's keyword arguments for the settings in ``values`` (flat names), each
    checked; settings not given keep the constructor's defaults."""
    known = {s.name: s for s in settings_of(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting {unknown[0]!r}; it has {', '.join(known)}")
    kwargs: dict = {}
    for name, value in values.items():
        setting = known[name]
        value = setting.check(value)
        if setting.index is None:
            kwargs[setting.argument or name] = value
        else:
            group = [s for s in known.values() if s.argument == setting.argument]
            whole = kwargs.setdefault(setting.argument, [s.default for s in group])
            whole[setting.index] = value
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def build(cls, parameters, values: dict):
    """An optimizer of class ``cls`` over ``parameters`` with the settings in ``values``."""
    return cls(parameters, **arguments(cls, values))


def call_text(cls, values: dict, parameters: str = "model.parameters()") -> str:
    """The Python call that builds the same optimizer, every value written as a literal:
    ``optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.999))``."""
    kwargs = arguments(cls, values)
    written = "".join(f", {name}={value!r}" for name, value in kwargs.items())
    return f"optim.{cls.__name__}({parameters}{written})"
