"""Everything a playground run is made of, as one checked :class:`Setup`.

The page keeps the setup in its address (so a link reproduces a run) and sends it as JSON; the
server trusts none of it: :meth:`Setup.from_dict` checks every value's type and range, caps
every size (layers, neurons, points), and refuses unknown names with one line naming the setting
as the page shows it (``hidden layer 2: at most 8 neurons, got 50``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from .. import models, optim
from ..nn.features import FEATURES, ONE_INPUT
from .points import DATA_SETS, MAX_CLASSES, PlaygroundError, class_count, inputs_of, task_of

MAX_HIDDEN_LAYERS = 6
MAX_NEURONS = 8
MIN_POINTS, MAX_POINTS = 10, 1000  # drawn by a generated set
MAX_ADDED_POINTS = 500
MAX_COORDINATE = 1e4
MAX_SEED = 2**31 - 1  # a JavaScript number holds it exactly
ACTIVATIONS = ("linear", *models.ACTIVATIONS)
OUTPUTS = {
    "softmax": "softmax + cross-entropy",
    "sigmoid": "sigmoid + binary cross-entropy (2 classes)",
    "linear": "linear + mean squared error",
}
OPTIMIZER_SETTINGS = (
    "momentum",
    "nesterov",
    "beta1",
    "beta2",
    "alpha",
    "rho",
    "lr_decay",
    "weight_decay",
)
"""The optimizer settings the page has a control for; each optimizer offers those of its own
(:mod:`chainrule.optim.spec`), starting from its constructor's defaults."""
MAX_SETTING = 10.0  # the page's cap on a setting without an upper bound (weight decay)


def _optimizers() -> dict:
    """Each optimizer of chainrule.optim: (its class name, the learning rate it starts from,
    the settings the page offers for it), from the optimizer classes' own description."""
    found = {}
    for name, cls in optim.stepping_optimizers().items():
        offered = tuple(s.name for s in optim.spec.settings_of(cls) if s.name in OPTIMIZER_SETTINGS)
        found[name] = (cls.__name__, cls.suggested_lr, offered)
    return found


OPTIMIZERS = _optimizers()


def optimizer_setting(name: str) -> optim.spec.Setting:
    """The page's setting ``name`` as the optimizers describe it (the same for all that have it)."""
    return optim.spec.settings_by_name(optim.OPTIMIZER_CLASSES.values())[name]


# setting -> (label on the page, low, high, low is open, whole numbers)
RANGES = {
    "classes": ("classes", 2, MAX_CLASSES, False, True),
    "n": ("points", MIN_POINTS, MAX_POINTS, False, True),
    "test": ("test fraction", 0.1, 0.9, False, False),
    "seed": ("seed", 0, MAX_SEED, False, True),
    "lr": ("learning rate", 0.0, 10.0, True, False),
    "batch": ("batch size", 1, MAX_POINTS + MAX_ADDED_POINTS, False, True),
    "l1": ("L1", 0.0, 10.0, False, False),
    "l2": ("L2", 0.0, 10.0, False, False),
    "dropout": ("dropout", 0.0, 0.9, False, False),
}
# the learning rates the page's menu offers, as the TensorFlow Playground's (any other within
# RANGES["lr"] can be typed)
LEARNING_RATES = tuple(
    sorted(
        {0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0}
        | {lr for _, lr, _ in OPTIMIZERS.values()}
    )
)
# what each control does, in a sentence the page shows beside it (an optimizer's own settings
# explain themselves: see setting_help)
EXPLANATIONS = {
    "n": "How many points the data set draws, training and test points together.",
    "classes": "How many classes the data set draws.",
    "noise": "How far the points scatter around the pattern: more noise hides the pattern "
    "and makes it easier for the network to learn the noise instead (overfitting).",
    "test": "The share of the points kept out of training: the test loss, measured on them, "
    "shows how well the network does on points it has never seen.",
    "seed": "Picks the random points and the first weights: the same seed and setup give the "
    "same run.",
    "features": "What the network is fed: x and y, or numbers made from them (x², xy, "
    "sin x...); a well-chosen feature can make a hard pattern easy.",
    "hidden": "The layers between the features and the output: each builds new shapes out of "
    "the last one's, so more layers and neurons can draw more complicated boundaries, but learn "
    "slower and overfit more easily.",
    "neurons": "A neuron adds up its inputs times its weights, plus its bias, and applies the "
    "activation; its picture shows that output over the whole view.",
    "activation": "The function each neuron of this layer applies to its weighted sum; without a "
    "non-linear one (tanh, relu...) any number of layers adds up to one linear function.",
    "output": "The last layer and its loss: softmax gives every class a probability, sigmoid "
    "one probability for two classes, linear a number (a regression).",
    "optimizer": "How a gradient becomes a step: sgd and gd step straight downhill; adam and the "
    "others adapt each weight's step to the history of its gradients.",
    "lr": "How far each step moves the weights along the gradient: too small learns slowly, too "
    "large overshoots, and the loss jumps about or blows up.",
    "batch": "How many training points each step averages the gradient over: fewer give more, "
    "noisier steps an epoch; more give fewer, steadier ones.",
    "l1": "Adds L1 × the sum of |w| over the weights to the loss: every weight is pulled "
    "toward zero by the same amount, so the ones the task does not need end near zero.",
    "l2": "Adds L2/2 × the sum of w² over the weights to the loss: big weights are "
    "pulled back hardest, which keeps the boundary smooth and fights overfitting.",
    "dropout": "While training, each hidden neuron's output is set to zero with this "
    "probability (the others scaled up), so the network cannot lean on any one neuron.",
}


@dataclass
class OptimizerChoice:
    """The optimizer a page chose and its settings, as the optimizers describe them (shared by
    the points' :class:`Setup` and the images' setup)."""

    optimizer: str = "sgd"
    lr: float | None = None  # None: the optimizer's default
    # the optimizer's settings (OPTIMIZER_SETTINGS); None: the optimizer's default, or one the
    # optimizer does not have
    momentum: float | None = None
    nesterov: bool | None = None
    beta1: float | None = None
    beta2: float | None = None
    alpha: float | None = None
    rho: float | None = None
    lr_decay: float | None = None
    weight_decay: float | None = None

    def optimizer_settings(self, given: dict) -> None:
        """Set the chosen optimizer's settings from ``given`` (each checked as the optimizer
        describes it), its defaults for the rest, and None for those it does not have."""
        own = optim.spec.settings_of(optim.OPTIMIZER_CLASSES[self.optimizer])
        for name in OPTIMIZER_SETTINGS:
            setattr(self, name, None)
        for setting in (s for s in own if s.name in OPTIMIZER_SETTINGS):
            name = setting.name
            value = given.get(name, setting.default)
            try:
                value = setting.check(value)
            except ValueError as exc:
                raise PlaygroundError(str(exc)) from None
            if setting.kind is float and value > MAX_SETTING:
                raise PlaygroundError(f"{name} must be at most {MAX_SETTING:g}, got {value!r}")
            setattr(self, name, value)

    def optimizer_values(self) -> dict:
        """The learning rate and the chosen optimizer's settings, by their names."""
        offered = OPTIMIZERS[self.optimizer][2]
        return {"lr": self.lr} | {name: getattr(self, name) for name in offered}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Setup(OptimizerChoice):
    """The settings of one playground run (see :data:`RANGES` and the page for each meaning)."""

    dataset: str = "circles"
    classes: int = 2
    n: int = 400
    noise: float | None = None  # None: the data set's default
    test: float = 0.2
    seed: int = 0
    points: list = field(default_factory=list)
    features: list = field(default_factory=lambda: ["x", "y"])
    hidden: list = field(default_factory=lambda: [4, 2])
    activations: list = field(default_factory=lambda: ["tanh", "tanh"])
    output: str | None = None  # None: softmax for classes, linear for numbers
    batch: int = 10
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0

    @classmethod
    def from_dict(cls, values: dict, upload=None) -> Setup:
        """A checked setup from the page's JSON; defaults fill what is absent (``None`` too).

        ``upload``: the session's uploaded file, which decides task, inputs and classes when
        the data set is ``upload``. Raises :class:`PlaygroundError` naming the first bad setting.
        """
        given = given_settings(cls, values)
        setup = cls()
        for name, names in (("dataset", DATA_SETS), ("optimizer", OPTIMIZERS)):
            if name in given:
                setattr(setup, name, checked_choice(name, given[name], names))
        for name in RANGES:
            if name in given:
                setattr(setup, name, checked_number(name, given[name]))
        spec = DATA_SETS[setup.dataset]
        if "noise" in given and spec.noise:
            setup.noise = _within(f"noise ({spec.noise})", given["noise"], 0.0, spec.noise_max)
        if setup.noise is None or not spec.noise:
            setup.noise = spec.noise_default if spec.noise else 0.0
        setup.optimizer_settings(given)
        if setup.lr is None:
            setup.lr = OPTIMIZERS[setup.optimizer][1]
        task, inputs = task_of(setup, upload), inputs_of(setup, upload)
        if "points" in given:
            setup.points = _points(given["points"], inputs, task, setup.classes)
        if "features" in given:
            setup.features = _features(given["features"], inputs)
        elif inputs == 1:
            setup.features = ["x"]
        if "hidden" in given:
            setup.hidden = _hidden(given["hidden"])
        setup.activations = _activations(given.get("activations", setup.activations), setup.hidden)
        setup.output = _output(given.get("output"), task, class_count(setup, upload))
        if setup.nesterov and not setup.momentum:
            raise PlaygroundError("nesterov needs the sgd optimizer with momentum above 0")
        return setup


def given_settings(cls, values) -> dict:
    """The settings a page sent for the setup class ``cls`` (those not None), once ``values``
    is checked to be a JSON object naming only ``cls``'s fields."""
    if not isinstance(values, dict):
        raise PlaygroundError("the setup must be a JSON object")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise PlaygroundError(
            f"unknown setting {shown_value(unknown[0])}; known: {', '.join(sorted(known))}"
        )
    return {k: v for k, v in values.items() if v is not None}


def shown_value(value) -> str:
    return json.dumps(value, default=str)[:60]


def checked_choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise PlaygroundError(
            f"{name} must be one of {', '.join(choices)}, got {shown_value(value)}"
        )
    return value


def checked_number(name: str, value):
    label, low, high, low_open, whole = RANGES[name]
    if whole:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise PlaygroundError(
                f"{label} ({name}) must be a whole number from {low} to {high}, got {shown_value(value)}"
            )
        return value
    return _within(f"{label} ({name})", value, low, high, low_open)


def _within(label: str, value, low: float, high: float, low_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not ((low < value) if low_open else (low <= value)) or value > high:
        bound = f"above {low:g}" if low_open else f"from {low:g}"
        raise PlaygroundError(
            f"{label} must be a number {bound} to {high:g}, got {shown_value(value)}"
        )
    return float(value)


def _points(points, inputs: int, task: str, classes: int) -> list:
    """The clicked points: ``[x, y, class or value]`` (``[x, value]`` for one input)."""
    if not isinstance(points, list) or len(points) > MAX_ADDED_POINTS:
        raise PlaygroundError(f"points: a list of at most {MAX_ADDED_POINTS} added points")
    width, checked = inputs + 1, []
    for i, point in enumerate(points):
        label = f"added point {i + 1}"
        if not isinstance(point, list) or len(point) != width:
            raise PlaygroundError(f"{label}: expected {width} numbers, got {shown_value(point)}")
        coordinates = [_within(label, v, -MAX_COORDINATE, MAX_COORDINATE) for v in point]
        if task == "classification":
            k = coordinates[-1]
            if not (k.is_integer() and 0 <= k < classes):
                raise PlaygroundError(f"{label}: its class must be 0 to {classes - 1}, got {k:g}")
            coordinates[-1] = int(k)
        checked.append(coordinates)
    return checked


def _features(features, inputs: int) -> list:
    known = ONE_INPUT if inputs == 1 else tuple(FEATURES)
    if not isinstance(features, list) or not features:
        raise PlaygroundError(f"features: choose at least one of {', '.join(known)}")
    for name in features:
        if name not in known:
            what = "of one number x" if inputs == 1 else "of a point"
            raise PlaygroundError(
                f"features: {shown_value(name)} is not a feature {what} ({', '.join(known)})"
            )
    if len(set(features)) != len(features):
        raise PlaygroundError("features: each feature once")
    return [name for name in known if name in features]  # one order, the page's


def _hidden(hidden) -> list:
    if not isinstance(hidden, list) or len(hidden) > MAX_HIDDEN_LAYERS:
        raise PlaygroundError(
            f"hidden layers: at most {MAX_HIDDEN_LAYERS}, got {shown_value(hidden)}"
        )
    for i, size in enumerate(hidden):
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_NEURONS:
            raise PlaygroundError(
                f"hidden layer {i + 1}: 1 to {MAX_NEURONS} neurons, got {shown_value(size)}"
            )
    return hidden


def _activations(activations, hidden: list) -> list:
    if isinstance(activations, str):  # one for every layer
        activations = [activations] * len(hidden)
    if not isinstance(activations, list):
        raise PlaygroundError("activations: one name per hidden layer")
    activations = (activations + [activations[-1] if activations else "tanh"] * len(hidden))[
        : len(hidden)
    ]
    for i, name in enumerate(activations):
        if name not in ACTIVATIONS:
            raise PlaygroundError(
                f"hidden layer {i + 1}: activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {shown_value(name)}"
            )
    return activations


def _output(output, task: str, classes: int) -> str:
    if output is None:
        return "linear" if task == "regression" else "softmax"
    checked_choice("output", output, OUTPUTS)
    if task == "regression" and output != "linear":
        raise PlaygroundError(f"output {output}: a regression's output is linear (with MSE)")
    if task == "classification" and output == "linear":
        raise PlaygroundError("output linear: for classes choose softmax or sigmoid")
    if output == "sigmoid" and classes != 2:
        raise PlaygroundError(f"output sigmoid: one sigmoid tells 2 classes apart, not {classes}")
    return output


def choices() -> dict:
    """What the page offers (menus, ranges, defaults), so that it and the server agree."""
    return {
        "datasets": [
            {
                "name": s.name,
                "label": s.label,
                "task": s.task,
                "inputs": s.inputs,
                "noise": s.noise,
                "noise_default": s.noise_default,
                "noise_max": s.noise_max,
                "has_classes": s.has_classes,
            }
            for s in DATA_SETS.values()
        ],
        "features": {name: label for name, (label, _) in FEATURES.items()},
        "one_input_features": list(ONE_INPUT),
        "activations": list(ACTIVATIONS),
        "outputs": OUTPUTS,
        "optimizers": {
            name: {"label": cls, "lr": lr, "settings": list(settings)}
            for name, (cls, lr, settings) in OPTIMIZERS.items()
        },
        "learning_rates": list(LEARNING_RATES),
        "explanations": {**EXPLANATIONS, **setting_help()},
        "ranges": {
            name: {"label": label, "min": low, "max": high}
            for name, (label, low, high, _, _) in RANGES.items()
        }
        | {
            name: {
                "label": name.replace("_", " "),
                "min": optimizer_setting(name).low,
                "max": min(optimizer_setting(name).high, MAX_SETTING),
                "help": optimizer_setting(name).help,
            }
            for name in OPTIMIZER_SETTINGS
            if optimizer_setting(name).kind is float
        },
        "limits": {
            "hidden_layers": MAX_HIDDEN_LAYERS,
            "neurons": MAX_NEURONS,
            "added_points": MAX_ADDED_POINTS,
            "classes": MAX_CLASSES,
        },
        "defaults": Setup().to_dict(),
    }


def setting_help() -> dict:
    """Each optimizer setting the page offers, explained by the optimizers' own line of help
    (:class:`~chainrule.optim.spec.Setting`), so that nothing restates it."""
    return {name: optimizer_setting(name).help for name in OPTIMIZER_SETTINGS}
