"""The image mode's trained network as a run folder, written as the points mode's is
(:func:`chainrule.runs.folder.write_run`), so that ``chainrule predict`` (a drawing, a photo, an
``.npy`` file), ``info``, ``evaluate`` and the lens take it as one of ``train``'s runs.

What ``train`` records for the 8x8 digits and MNIST, the folder records too: images of (H, W)
scaled by ``pixel_max`` (16 or 255) and not standardised (mean 0, std 1, as the page trained),
and the data set's name, which tells ``predict`` how to prepare a picture. So the network is
saved behind an ``Unflatten`` that gives it its channel axis, (N, H, W) -> (N, 1, H, W); and
"is it X or not", which ``train`` writes as one logit, has its two logits ``(z0, z1)`` folded
into one, ``z1 - z0`` (``softmax(z0, z1)_1 = sigmoid(z1 - z0)``: the same probabilities).
The user's own uploaded images stay on the page (a run folder names the data it came from).
"""

from __future__ import annotations

from pathlib import Path

from .. import io, nn
from ..runs.config import Config
from ..runs.folder import write_run
from ..tensor import as_array
from ..train import History, evaluate
from .export import check_exportable
from .image_script import image_script
from .points import PlaygroundError

PIXEL_MAX = {"digits": 16.0, "mnist": 255.0}


def write_image_run_folder(trainer, out: Path, upload_name: str | None = None) -> Path:
    """Write the image run's folder into ``out`` (a new folder); returns it."""
    setup, images = trainer.setup, trainer.images
    if setup.dataset not in PIXEL_MAX:
        raise PlaygroundError(
            "the run folder is written for the digits and MNIST; your own images stay on the page"
        )
    check_exportable(trainer)
    model = exported_image_model(trainer)
    preprocessing = {
        "pixel_max": PIXEL_MAX[setup.dataset],
        "mean": 0.0,
        "std": 1.0,
        "input_shape": list(images.shape[1:]),
        "target": setup.positive,
        "task": "classification",
    }
    metadata = {
        "preprocessing": preprocessing,
        "dataset": setup.dataset,
        "playground": setup.to_dict(),
    }
    config = _config(trainer, out.name)
    history = History(trainer.history)
    write_run(out, config, model, metadata, history, _metrics(trainer, model, out))
    io.write_json(out / "playground.json", {"setup": setup.to_dict(), "epochs": trainer.epoch})
    io.atomic_write(out / "train.py", image_script(trainer).encode())
    return out


def exported_image_model(trainer) -> nn.Sequential:
    """The network taking (N, H, W) images; one logit for "is it X or not"."""
    height = trainer.images.shape[1]
    layers = [nn.Unflatten(1, (1, height)), *trainer.model]
    if trainer.setup.positive is not None:
        pair = layers[-1]
        single = nn.Linear(pair.in_features, 1)
        weight, bias = as_array(pair.weight), as_array(pair.bias)
        single.weight._data[...] = weight[1] - weight[0]
        single.bias._data[...] = bias[1] - bias[0]
        layers[-1] = single
    model = nn.Sequential(*layers)
    model.eval()
    return model


def _config(trainer, out_name: str) -> Config:
    """The settings in ``chainrule train``'s terms, as far as they say them (``model.json``
    holds the network itself, ``playground.json`` the whole setup)."""
    setup = trainer.setup
    values = {
        "dataset": setup.dataset,
        "model": setup.network,
        "hidden": list(setup.hidden),
        "activation": setup.activation,
        "loss": "cross-entropy",
        "optimizer": setup.optimizer,
        **setup.optimizer_values(),  # the learning rate and the optimizer's settings
        "batch_size": setup.batch,
        "epochs": trainer.epoch,
        "target": setup.positive,
        "seed": setup.seed,
        "val_fraction": 0.0,
        "out": out_name,
    }
    return Config.from_dict(values, source="playground export")


def _metrics(trainer, model, out: Path) -> dict:
    """``metrics.json``: the exported model on the test images, as ``train`` reports a run."""
    images = trainer.images
    x_test, y_test = images.x_test[:, 0], images.y_test
    if trainer.setup.positive is None:
        loss_fn = nn.CrossEntropyLoss()
    else:
        loss_fn, y_test = nn.BCEWithLogitsLoss(), y_test.astype("float32")[:, None]
    test = evaluate(model, loss_fn, (x_test, y_test))
    return {f"test_{key}": value for key, value in test.items()} | {
        "epochs": trainer.epoch,
        "train_seconds": trainer.seconds,
        "dataset": trainer.setup.dataset,
        "task": "classification",
        "parameters": model.num_parameters(),
        "out": out.name,
    }
