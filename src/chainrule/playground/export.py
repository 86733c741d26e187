"""The page's trained network as a run folder, written by the same functions as
``chainrule train``'s (:func:`chainrule.runs.folder.write_run`), so that ``chainrule predict``,
``info``, ``evaluate`` and the lens take it as one of its runs.

The folder (sent to the browser as a zip file) holds:

* ``model.safetensors`` + ``model.json``: the network, features layer included, so it takes the
  raw points ``(x, y)``; the preprocessing records the standardisation (and a regression's target
  scaling), the feature and class names. A single sigmoid output is saved as the equal two-logit
  softmax, logits ``(0, z)``: ``softmax(0, z)_1 = 1 / (1 + e^-z) = sigmoid(z)``, the same
  probabilities and loss in the form chainrule's readers take for two classes.
* ``data.csv``: every point (generated, uploaded, added), which ``config.json`` names; ``evaluate``
  splits it as the command line splits a CSV file (20% for testing, seed 0), which are the page's
  test points when its test fraction was 0.2.
* ``config.json``: the settings as ``chainrule train`` records them, as far as it can say them
  (per-layer activations, features and L1/L2 it cannot: ``playground.json`` has the whole setup).
* ``history.csv`` (loss per epoch, the test points as ``val_*``) and ``metrics.json`` (on the test
  points); ``train.py``: the run as a script (:mod:`.script`).
"""

from __future__ import annotations

import csv
import hashlib
import io as bytes_io
import tempfile
import zipfile
from pathlib import Path

from .. import io, models, nn
from ..backend import xp
from ..runs.config import Config
from ..runs.folder import write_run
from ..tensor import as_array
from ..train import History, evaluate
from .points import PlaygroundError
from .script import python_script

FOLDER = "playground-run"
DATA_FILE = "data.csv"


def run_folder_zip(trainer, upload_name: str | None = None, write=None) -> bytes:
    """The run folder of ``trainer``'s network as a zip file (the folder ``playground-run/``),
    written by ``write(trainer, out, upload_name)`` (default :func:`write_run_folder`; the
    image mode has its own)."""
    write = write or write_run_folder
    with tempfile.TemporaryDirectory() as scratch:
        out = write(trainer, Path(scratch) / FOLDER, upload_name)
        buffer = bytes_io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(out.iterdir()):
                archive.write(path, f"{FOLDER}/{path.name}")
        return buffer.getvalue()


def write_run_folder(trainer, out: Path, upload_name: str | None = None) -> Path:
    """Write the run folder into ``out`` (a new folder); returns it."""
    check_exportable(trainer)
    points, setup = trainer.points, trainer.setup
    csv_bytes = data_csv(points)
    model = exported_model(trainer)
    preprocessing = {
        "pixel_max": None,
        **points.standardizer.to_dict(),
        "input_shape": [points.inputs],
        "target": None,
        "task": points.task,
        "feature_names": list(points.feature_names),
        "target_name": points.target_name,
        "data_sha256": hashlib.sha256(csv_bytes).hexdigest(),
    }
    if points.task == "regression":
        preprocessing |= {"target_mean": points.target_mean, "target_std": points.target_std}
    else:
        preprocessing["classes"] = list(points.classes)
    metadata = {
        "preprocessing": preprocessing,
        "dataset": "csv",
        "playground": setup.to_dict(),
    }
    config = run_config(trainer, out.name)
    write_run(out, config, model, metadata, History(trainer.history), metrics(trainer, model, out))
    io.atomic_write(out / DATA_FILE, csv_bytes)
    io.write_json(out / "playground.json", {"setup": setup.to_dict(), "epochs": trainer.epoch})
    io.atomic_write(out / "train.py", python_script(trainer, upload_name).encode())
    return out


def check_exportable(trainer) -> None:
    """Refuse a run with nothing worth exporting: untrained, or diverged."""
    if trainer.epoch == 0:
        raise PlaygroundError("nothing to export yet: train at least one epoch first")
    if not all(xp.isfinite(as_array(p)).all() for p in trainer.model.parameters()):
        raise PlaygroundError(
            "the network has diverged (its weights are no longer numbers): nothing worth "
            "exporting; lower the learning rate, press reset and train again"
        )


def exported_model(trainer) -> nn.Sequential:
    """The trained network as the run folder holds it (a sigmoid output as two logits)."""
    layers = list(trainer.model)
    if trainer.setup.output == "sigmoid":
        single = layers[-1]
        pair = nn.Linear(single.in_features, 2)
        pair.weight._data[...] = 0.0
        pair.weight._data[1] = as_array(single.weight)[0]
        pair.bias._data[...] = [0.0, float(as_array(single.bias)[0])]
        layers[-1] = pair
    model = nn.Sequential(*layers)
    model.eval()
    return model


def data_csv(points) -> bytes:
    """Every point as CSV: the feature columns, then the class (its name) or the value. Numbers
    are written so that they read back as the same float32 values (``repr`` of the float);
    every name (the user's own column and class names) is quoted by the csv module, so that a
    comma or a quote in one reads back as itself."""
    buffer = bytes_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow([*points.feature_names, points.target_name])
    for features, target in zip(points.x_all.tolist(), points.y_all.tolist()):
        shown = points.classes[target] if points.task == "classification" else target
        writer.writerow([*features, shown])
    return buffer.getvalue().encode()


def run_config(trainer, out_name: str) -> Config:
    """The settings in ``chainrule train``'s terms (checked by its own rules)."""
    setup, points = trainer.setup, trainer.points
    activation = next((a for a in setup.activations if a in models.ACTIVATIONS), "relu")
    values = {
        "dataset": "csv",
        "data": DATA_FILE,
        "task": points.task,
        "model": "mlp",
        "hidden": list(setup.hidden),
        "activation": activation,
        "dropout": setup.dropout,
        "loss": "mse" if points.task == "regression" else "cross-entropy",
        "label_smoothing": 0.0,
        "optimizer": setup.optimizer,
        **setup.optimizer_values(),  # the learning rate and the optimizer's settings
        "batch_size": setup.batch,
        "epochs": trainer.epoch,
        "target": points.target_name,
        "seed": setup.seed,
        "val_fraction": 0.0,
        "out": out_name,
    }
    return Config.from_dict(values, source="playground export")


def metrics(trainer, model, out: Path) -> dict:
    """``metrics.json``: the exported model on the test points, as ``train`` reports a run."""
    points = trainer.points
    x_test = points.network_inputs(points.x_test)
    if points.task == "regression":
        loss_fn, y_test = nn.MSELoss(), points.network_targets(points.y_test)
        target_std = points.target_std
    else:
        loss_fn, y_test, target_std = nn.CrossEntropyLoss(), xp.asarray(points.y_test), None
    test = evaluate(model, loss_fn, (x_test, y_test), target_std=target_std)
    result = {f"test_{key}": value for key, value in test.items() if key != "loss"}
    return result | {
        "test_loss": test["loss"],
        "epochs": trainer.epoch,
        "train_seconds": trainer.seconds,
        "dataset": "csv",
        "task": points.task,
        "parameters": model.num_parameters(),
        "out": out.name,
    }
