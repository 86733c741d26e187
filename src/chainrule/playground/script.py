"""The page's run as a Python script: chainrule's own calls, in the order the playground makes
them, so that running it repeats the run step for step and ends at the same losses.

The lines mirror :mod:`.points` (data, split, scaling), :mod:`.network` (model, loss, optimizer,
regularisation) and :mod:`.trainer` (the epoch loop); a test runs the script for every optimizer
and output and compares its losses with the page's.

Every value is written as a Python literal (``repr``), never pasted into the source: an uploaded
file's name and its class names are the user's text, and the docstring holds them only as
:func:`_prose` writes them, so running the script runs nothing but the lines below.
"""

from __future__ import annotations

from .. import models, optim
from .network import describe
from .points import DATA_SETS

LOSSES = {
    "softmax": "nn.CrossEntropyLoss()",
    "sigmoid": "nn.BCEWithLogitsLoss()",
    "linear": "nn.MSELoss()",
}
ACTIVATION_LAYERS = {"linear": "nn.Identity()"} | {
    name: f"nn.{cls.__name__}()" for name, cls in models.ACTIVATIONS.items()
}


def python_script(trainer, upload_name: str | None = None) -> str:
    """A script that trains ``trainer``'s setup for as many epochs as it has trained."""
    setup, points = trainer.setup, trainer.points
    regression = points.task == "regression"
    lines = [
        '"""A chainrule playground run as a script.',
        "",
        f"Data: {_data_description(setup, points, upload_name)}.",
        f"Network: {_prose(describe(setup, points))}; {_prose(setup.optimizer)}, learning rate "
        f"{_prose(setup.lr)}, batch {_prose(setup.batch)}, {_prose(trainer.epoch)} epochs.",
        "",
        "It repeats the page's run step for step (the same points, seed, batches and",
        "arithmetic), so it ends at the losses the page showed. Run it where chainrule is",
        "installed: python train.py",
        '"""',
        "",
        "import numpy as np",
        "",
        "import chainrule as cr",
        "from chainrule import nn, optim",
        "from chainrule.data import DataLoader, Standardizer, train_val_split",
        "",
        f"EPOCHS = {trainer.epoch!r}",
        "",
        *_data_lines(setup, points, upload_name),
        "",
        "# inputs standardised with the training points' mean and standard deviation",
        "standardize = Standardizer.fit(x_train, per_feature=True)",
        "x_train, x_test = standardize(x_train), standardize(x_test)",
        *_target_lines(setup, regression),
        "",
        f"cr.manual_seed({setup.seed!r})  # the initial weights (and dropout) draw from this stream",
        "model = nn.Sequential(",
        *(f"    {layer}," for layer in _layers(setup, points, trainer.outputs)),
        ")",
        f"loss_fn = {LOSSES[setup.output]}",
        f"optimizer = {optimizer_call(setup)}",
        "weights = [layer.weight for layer in model if isinstance(layer, nn.Linear)]",
        f"loader = DataLoader((x_train, y_train), {setup.batch!r}, shuffle=True, seed={setup.seed!r})",
        "",
        "for epoch in range(EPOCHS):",
        "    model.train()",
        "    for x, y in loader:",
        "        loss = loss_fn(model(x), y)",
        *_penalty_lines(setup),
        "        optimizer.zero_grad()",
        "        loss.backward()",
        "        optimizer.step()",
        "",
        "model.eval()",
        "with cr.no_grad():",
        "    train_loss = loss_fn(model(cr.tensor(x_train)), cr.tensor(y_train)).item()",
        "    test_loss = loss_fn(model(cr.tensor(x_test)), cr.tensor(y_test)).item()",
        'print(f"after {EPOCHS} epochs: train loss {train_loss:.8g}, test loss {test_loss:.8g}")',
    ]
    return "\n".join(lines) + "\n"


def _data_description(setup, points, upload_name) -> str:
    """The data in words, for the docstring (every value through :func:`_prose`)."""
    if setup.dataset == "upload":
        classes = f", classes {_prose(list(points.classes))}" if points.classes else ""
        return f"the CSV file {_prose(upload_name)}{classes}"
    if setup.dataset == "custom":
        return f"{_prose(len(points.x_all))} points added by clicking"
    spec = DATA_SETS[setup.dataset]
    added = f", and {_prose(points.added)} points added by clicking" if points.added else ""
    return f"{_prose(spec.label)}, {_prose(setup.n)} points{added}"


def _data_lines(setup, points, upload_name) -> list:
    stratify = "y" if points.task == "classification" else "None"
    label_type = "np.int64" if points.task == "classification" else "np.float32"
    if setup.dataset in ("upload", "custom"):
        n_own = len(points.x_all) - points.added
        where = "the rows of the CSV file" if setup.dataset == "upload" else "the points you added"
        lines = [
            f"# the data: {where}",
            f"x = np.array({_literal(points.x_all[:n_own])}, dtype=np.float32)",
            f"y = np.array({_literal(points.y_all[:n_own])}, dtype={label_type})",
        ]
    else:
        call = DATA_SETS[setup.dataset].call(setup.n, setup.noise, setup.classes, setup.seed)
        lines = ["# the data: generated points", f"x, y = {call}"]
    lines += [
        "# split as chainrule's CSV reader splits: seed 0, each class in proportion",
        "(x_train, y_train), (x_test, y_test) = train_val_split(",
        f"    x, y, val_fraction={setup.test!r}, seed=0, stratify={stratify}",
        ")",
    ]
    if points.added and setup.dataset != "custom":
        first = len(points.x_all) - points.added
        lines += [
            "# the points added by clicking are training points",
            f"x_added = np.array({_literal(points.x_all[first:])}, dtype=np.float32)",
            f"y_added = np.array({_literal(points.y_all[first:])}, dtype={label_type})",
            "x_train = np.concatenate([x_train, x_added])",
            "y_train = np.concatenate([y_train, y_added])",
        ]
    return lines


def _target_lines(setup, regression: bool) -> list:
    if regression:
        return [
            "# targets standardised likewise (every loss below is on this scale)",
            "mean, std = y_train.astype(np.float64).mean(), y_train.astype(np.float64).std()",
            "y_train, y_test = (",
            "    ((y.astype(np.float64) - mean) / std).astype(np.float32)[:, None]",
            "    for y in (y_train, y_test)",
            ")",
        ]
    if setup.output == "sigmoid":
        return [
            "# one sigmoid output: the targets are 0.0 or 1.0, one per row",
            "y_train, y_test = (y.astype(np.float32)[:, None] for y in (y_train, y_test))",
        ]
    return []


def _layers(setup, points, outputs: int) -> list:
    layers = [f"nn.PlaneFeatures({setup.features!r}, in_features={points.inputs!r})"]
    width = len(setup.features)
    for size, name in zip(setup.hidden, setup.activations):
        layers += [f"nn.Linear({width!r}, {size!r})", ACTIVATION_LAYERS[name]]
        if setup.dropout:
            layers.append(f"nn.Dropout({setup.dropout!r})")
        width = size
    return [*layers, f"nn.Linear({width!r}, {outputs!r})"]


def _penalty_lines(setup) -> list:
    """The regularisation terms, summed as :func:`.network.penalty` sums them."""
    terms = []
    if setup.l1:
        terms.append(f"{setup.l1!r} * sum(w.abs().sum() for w in weights)")
    if setup.l2:
        terms.append(f"{setup.l2!r} / 2 * sum((w * w).sum() for w in weights)")
    if not terms:
        return []
    return [f"        loss = loss + ({' + '.join(terms)})  # L1 / L2 on the weights"]


def _prose(value) -> str:
    """``value`` for the docstring: its ``repr`` with every double quote escaped, so that it
    cannot end the docstring (repr escapes backslashes, line breaks and unprintable characters,
    and writes a string in quotes: ``the CSV file 'mine.csv'``)."""
    return repr(value).replace('"', '\\"')


def _literal(values) -> str:
    """An array as a Python list whose numbers read back exactly (float32 -> float -> repr)."""
    return repr(values.tolist())


def optimizer_call(setup) -> str:
    """The optimizer's constructor call, written from the optimizer's own description with every
    value a literal: ``optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.999))``."""
    cls = optim.OPTIMIZER_CLASSES[setup.optimizer]
    return optim.spec.call_text(cls, setup.optimizer_values())
