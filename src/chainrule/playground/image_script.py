"""The image mode's run as a Python script (``train.py``), as :mod:`.script` writes the points
mode's: chainrule's own calls in the order :mod:`.images` and :mod:`.image_run` make them, so
that running it repeats the run step for step and ends at the same losses.

The user's own uploaded images stay on the page: the script is written for the 8x8 digits and
MNIST (whose folder it names). Every value is written as a Python literal (``repr``).
"""

from __future__ import annotations

from .images import MAX_MNIST
from .points import PlaygroundError
from .script import ACTIVATION_LAYERS, _prose, optimizer_call


def image_script(trainer) -> str:
    """A script that trains ``trainer``'s image setup for as many epochs as it has trained."""
    setup, images = trainer.setup, trainer.images
    if setup.dataset == "upload":
        raise PlaygroundError(
            "train.py is written for the digits and MNIST; your own images stay on the page"
        )
    lines = [
        '"""A chainrule playground run on images, as a script.',
        "",
        f"Data: {_prose(images.source)}; network: {_prose(setup.network)}, "
        f"{_prose(setup.optimizer)}, learning rate {_prose(setup.lr)}, batch "
        f"{_prose(setup.batch)}, {_prose(trainer.epoch)} epochs.",
        "",
        "It repeats the page's run step for step (the same images, seed, batches and",
        "arithmetic), so it ends at the losses the page showed: python train.py",
        '"""',
        "",
        "import numpy as np",
        "",
        "import chainrule as cr",
        "from chainrule import nn, optim",
        "from chainrule.data import DataLoader, train_val_split",
        "",
        f"EPOCHS = {trainer.epoch!r}",
        "",
        *_data_lines(setup, images),
        "",
        f"cr.manual_seed({setup.seed!r})  # the initial weights draw from this stream",
        "model = nn.Sequential(",
        *(f"    {layer}," for layer in _layers(trainer.model)),
        ")",
        "loss_fn = nn.CrossEntropyLoss()",
        f"optimizer = {optimizer_call(setup)}",
        f"loader = DataLoader((x_train, y_train), {setup.batch!r}, shuffle=True, seed={setup.seed!r})",
        "",
        "for epoch in range(EPOCHS):",
        "    model.train()",
        "    for x, y in loader:",
        "        loss = loss_fn(model(x), y)",
        "        optimizer.zero_grad()",
        "        loss.backward()",
        "        optimizer.step()",
        "",
        "model.eval()",
        "with cr.no_grad():",
        "    for name, x, y in (('train', x_train, y_train), ('test', x_test, y_test)):",
        "        out = model(cr.tensor(x))",
        "        loss = loss_fn(out, cr.tensor(y)).item()",
        "        accuracy = (out.numpy().argmax(axis=1) == y).mean()",
        '        print(f"after {EPOCHS} epochs: {name} loss {loss:.8g}, accuracy {accuracy:.4f}")',
    ]
    return "\n".join(lines) + "\n"


def _data_lines(setup, images) -> list:
    if setup.dataset == "digits":
        lines = [
            "# the 8x8 digits, levels 0..16 scaled to [0, 1], split 80/20 each class in proportion",
            "x, y = cr.data.load_digits()",
            "x = (x / 16.0).astype(np.float32)[:, None]",
            "(x_train, y_train), (x_test, y_test) = train_val_split(",
            "    x, y, val_fraction=0.2, seed=0, stratify=y",
            ")",
        ]
    else:
        n, n_test = len(images.x_train), len(images.x_test)
        lines = [
            f"# MNIST: the first {n} training and {n_test} test images, levels scaled to [0, 1]",
            f"(x_train, y_train), (x_test, y_test) = {images.source}",
            f"x_train = x_train[:{min(MAX_MNIST, n)!r}, None] * np.float32(1 / 255)",
            f"x_test = x_test[:{n_test!r}, None] * np.float32(1 / 255)",
            f"y_train, y_test = y_train[:{n!r}].astype(np.int64), y_test[:{n_test!r}].astype(np.int64)",
        ]
    if setup.positive is not None:
        lines += [
            f"# is it {images.classes[1]} or not: class 1 is {images.classes[1]}, 0 the others",
            f"y_train, y_test = ((y == {setup.positive!r}).astype(np.int64) for y in (y_train, y_test))",
        ]
    return lines


def _layers(model) -> list:
    """Each layer's constructor call, from the layer's own description (``config``)."""
    calls = []
    for layer in model:
        name = type(layer).__name__
        activation = getattr(layer, "activation_name", None)
        if activation in ACTIVATION_LAYERS:
            calls.append(ACTIVATION_LAYERS[activation])
            continue
        arguments = ", ".join(f"{key}={_plain(value)!r}" for key, value in layer.config().items())
        calls.append(f"nn.{name}({arguments})")
    return calls


def _plain(value):
    """A config value as the constructor takes it (a JSON list back to a tuple)."""
    return tuple(value) if isinstance(value, list) else value
