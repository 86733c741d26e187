"""One image run: the network (an MLP or a small CNN from chainrule's layers), trained an epoch
at a time by :func:`~chainrule.train.fit` as the points mode's :class:`~.trainer.Trainer` is, and
the messages the page draws from it.

* MLP: ``Flatten -> (Linear -> activation) per dense layer -> Linear``;
* CNN: ``(Conv2d 3x3, padding 1 -> activation -> MaxPool2d 2) per convolution -> Flatten ->``
  the MLP's dense layers (a pooling is left out once the maps are smaller than 4x4).

The loss is softmax + cross-entropy (``CrossEntropyLoss`` on the logits), for ten digits as for
"is it X or not". The ``data`` message names the layers as they describe themselves (their
``repr`` and ``output_shape``); a ``frame`` carries the loss and accuracy curves, the first
layer's weights as pictures, the confusion matrix of the test images and those it gets wrong.
"""

from __future__ import annotations

import math

from .. import backend, nn
from ..backend import ignore_float_errors, new_rng, use_rng, xp
from ..data.loader import DataLoader
from ..engine import no_grad
from ..tensor import Tensor, as_array
from ..train.metrics import confusion_matrix
from . import network
from .frames import encode, signed_bytes
from .images import ImageData, ImageSetup
from .trainer import LiveTraining

HISTORY_POINTS = 300
FIRST_LAYER_UNITS = 16  # weight pictures of the first layer sent per frame
WRONG_IMAGES = 12
SAMPLE_IMAGES = 20  # test images the page offers to pick from


def build_image_network(setup: ImageSetup, shape: tuple, classes: int) -> nn.Sequential:
    """The MLP or CNN of ``setup`` for images of ``shape`` (C, H, W) and ``classes`` outputs."""
    layers, (channels, height, width) = [], shape
    if setup.network == "cnn":
        for out in setup.channels:
            layers += [nn.Conv2d(channels, out, 3, padding=1), network.activation(setup.activation)]
            if min(height, width) >= 4:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = out
    layers.append(nn.Flatten())
    size = channels * height * width
    for neurons in setup.hidden:
        layers += [nn.Linear(size, neurons), network.activation(setup.activation)]
        size = neurons
    layers.append(nn.Linear(size, classes))
    return nn.Sequential(*layers)


class ImageTrainer(LiveTraining):
    """The state of one image run (owned by its session's thread), as :class:`.trainer.Trainer`:
    ``epoch``, ``steps``, ``seconds``, ``history`` (``loss``, ``accuracy`` and ``val_*`` per
    epoch), ``start`` (the untrained network's row) and the latest test predictions."""

    fit_line = False  # for StepRecorder: there is no best-fit line here

    def __init__(self, setup: ImageSetup, images: ImageData):
        self.setup, self.images = setup, images
        self.generator = new_rng(backend.check_seed(setup.seed))
        with use_rng(self.generator):
            self.model = build_image_network(setup, images.shape, len(images.classes))
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = network.build_optimizer(setup, self.model.parameters())
        self.loader = DataLoader(
            (images.x_train, images.y_train), setup.batch, shuffle=True, seed=setup.seed
        )
        self.epoch = self.steps = 0
        self.seconds = 0.0
        self.history: list[dict] = []
        self.test_predicted = None
        self.start = self.measure()

    problem = None  # the session's check before training: image data is always trainable

    def objective(self, output, target):
        """What the steps lower: the cross-entropy."""
        return self.loss_fn(output, target)

    def measure(self) -> dict:
        """Loss and accuracy on every training and test image; keeps the test predictions."""
        row = {"epoch": self.epoch, "seconds": round(self.seconds, 3)}
        images = self.images
        for prefix, x, y in (
            ("", images.x_train, images.y_train),
            ("val_", images.x_test, images.y_test),
        ):
            logits = self.logits(x)
            with ignore_float_errors():
                loss = float(
                    self.loss_fn(Tensor._make(logits, False), Tensor._make(y, False)).item()
                )
            predicted = logits.argmax(axis=1)
            row[prefix + "loss"] = loss
            row[prefix + "accuracy"] = float((predicted == y).mean())
        self.test_predicted = predicted
        return row

    def logits(self, x, batch: int = 1000):
        """The network's outputs for images ``x``, in evaluation mode, a batch at a time."""
        self.model.eval()
        parts = []
        with no_grad(), ignore_float_errors():
            for i in range(0, len(x), batch):
                parts.append(as_array(self.model(Tensor._make(x[i : i + batch], False))))
        return xp.concatenate(parts)

    def latest(self) -> dict:
        return self.history[-1] if self.history else self.start


def data_message(run: ImageTrainer) -> dict:
    """The ``data`` event: the classes, the image size and the network's layers."""
    images, setup = run.images, run.setup
    shape, layers = (1, *images.shape), []
    for i, layer in enumerate(run.model):
        shape = layer.output_shape(shape)
        layers.append({"index": i, "name": repr(layer), "shape": list(shape[1:])})
    samples = images.x_test[:SAMPLE_IMAGES]
    return {
        "mode": "images",
        "classes": images.classes,
        "shape": list(images.shape),
        "train": len(images.x_train),
        "test": len(images.x_test),
        "layers": layers,
        "network": " -> ".join(["x".join(map(str, images.shape))] + [x["name"] for x in layers]),
        "samples": [_picture(x) for x in samples],
        "sample_labels": images.y_test[:SAMPLE_IMAGES].tolist(),
        "setup": setup.to_dict(),
    }


def frame_message(run: ImageTrainer, playing: bool, message: str | None) -> dict:
    """The ``frame`` event: curves, numbers, first-layer weights, confusion and mistakes."""
    images, row = run.images, run.latest()
    k = len(images.classes)
    matrix = confusion_matrix(run.test_predicted, images.y_test, k)
    wrong = xp.nonzero(run.test_predicted != images.y_test)[0][:WRONG_IMAGES]
    return {
        "epoch": run.epoch,
        "playing": playing,
        "message": message,
        "steps": run.steps,
        "seconds": round(run.seconds, 3),
        "train": {"loss": _finite(row["loss"]), "accuracy": row["accuracy"]},
        "test": {"loss": _finite(row["val_loss"]), "accuracy": row["val_accuracy"]},
        "history": _history([run.start, *run.history]),
        "first_layer": _first_layer(run.model, images.shape),
        "confusion": matrix.tolist(),
        "wrong": [
            {
                "picture": _picture(images.x_test[i]),
                "label": int(images.y_test[i]),
                "predicted": int(run.test_predicted[i]),
            }
            for i in wrong.tolist()
        ],
    }


def _picture(image) -> str:
    """A grey image in [0, 1] as one byte a pixel."""
    return encode(xp.rint(255 * xp.clip(as_array(image)[0], 0, 1)))


def _first_layer(model, shape: tuple) -> dict:
    """The first layer with weights, its first units' weights as pictures: a dense neuron's
    weights over the input image, a convolution's kernels (its first input channel)."""
    for layer in model:
        weight = getattr(layer, "weight", None)
        if weight is None:
            continue
        w = as_array(weight)[:FIRST_LAYER_UNITS]
        pictures = w.reshape(len(w), *shape)[:, 0] if w.ndim == 2 else w[:, 0]
        size = list(pictures.shape[1:])
        encoded, scale = signed_bytes(pictures)
        return {
            "layer": repr(layer),
            "count": len(pictures),
            "size": size,
            "map": encoded,
            "scale": float(f"{scale:.4g}"),
        }
    return {}


def _history(rows: list) -> dict:
    n = len(rows)
    index = sorted(set(xp.linspace(0, n - 1, min(n, HISTORY_POINTS)).round().astype(int).tolist()))
    rows = [rows[i] for i in index]
    return {
        key: [_finite(r[key]) for r in rows]
        for key in ("epoch", "seconds", "loss", "val_loss", "accuracy", "val_accuracy")
    }


def _finite(value):
    return float(f"{value:.6g}") if value is not None and math.isfinite(value) else None
