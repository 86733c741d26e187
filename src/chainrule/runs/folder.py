"""Run folders on disk: which files are chainrule's, claiming a folder to train into, and
reading a finished (or interrupted) run back without changing anything.

Rules that keep a user's data safe:

* ``train`` writes only into a folder that is new or empty, or, with ``--overwrite``, one that
  holds an earlier chainrule run: then it first deletes that run's files (so no old model, metrics
  or checkpoint can be mistaken for the new run's) and leaves every other file alone. A file with
  one of the run files' names that chainrule did not write is never replaced: the run is refused.
* A file counts as chainrule's when its content says so: ``config.json`` holds only settings,
  ``model.json`` and the ``.safetensors`` files carry chainrule's format markers, ``metrics.json``
  a test accuracy (or R^2, or a text run's perplexity), ``history.csv`` starts with its
  ``epoch`` column.
* Temporary files of a killed write (``.<name>.<random>.tmp``) are removed when ``train`` next
  claims the folder. Reading a run (``evaluate``, ``predict``, ``info``) never writes, creates,
  removes or downloads anything, whatever its ``config.json`` says.
* Every run file is written by one function here (:func:`write_config`, :func:`write_history`,
  :func:`write_model`, :func:`write_metrics`), whether ``train`` writes it epoch by epoch or
  :func:`write_run` writes a run trained elsewhere (the playground) in one go.
* A CSV file named by a bare file name in ``config.json`` lies in the run folder itself (a run
  that carries its data, as the playground's do; a relative path with folders is refused);
  ``train`` records absolute paths.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from .. import io, models
from ..backend import xp
from ..data import Standardizer
from ..data.csv import MAX_NAME
from ..data.download import sha256_of
from ..files import DataFileError, atomic_write, open_regular, remove_stale_temporaries
from ..tensor import as_array
from ..train import History, evaluate
from . import text
from .config import TASKS, Config, RunError
from .recipe import build_loss, check_choices, prepare

CONFIG, MODEL, HISTORY, METRICS, CHECKPOINT = (
    "config.json",
    "model.safetensors",
    "history.csv",
    "metrics.json",
    "checkpoint.safetensors",
)
MODEL_JSON = "model.json"
# deleted in this order by --overwrite: the checkpoint first, so that no kill part-way leaves a
# folder whose --resume would continue the old run under the new settings
RUN_FILES = (CHECKPOINT, METRICS, MODEL, MODEL_JSON, HISTORY, CONFIG)


def _is_ours(path: Path) -> bool:
    """Whether ``path`` (one of :data:`RUN_FILES`) was written by chainrule, judged by content."""
    try:
        if path.name == CONFIG:
            Config.from_dict(io.read_json(path), recorded=True)
            return True
        if path.name == METRICS:
            return not {"test_accuracy", "test_r2", "test_perplexity"}.isdisjoint(
                io.read_json(path)
            )
        if path.name == MODEL_JSON:  # a text run's model is a Module (see .text.CharModel)
            return io.read_json(path).get("format") in ("chainrule.Sequential", "chainrule.Module")
        if path.name in (MODEL, CHECKPOINT):
            marker = "chainrule" if path.name == MODEL else "chainrule-checkpoint"
            return marker in io.read_header_metadata(path)
        if path.name == HISTORY:
            with open_regular(path) as f:
                return f.read(6) == b"epoch,"
    except (DataFileError, RunError, OSError):
        return False
    return False


def _foreign(folder: Path, names=RUN_FILES) -> list[str]:
    return [name for name in names if (folder / name).exists() and not _is_ours(folder / name)]


def claim(out: Path, overwrite: bool) -> None:
    """Make ``out`` ready for a new run (see the module docstring), or raise RunError."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out}: exists and is not a folder")
    if not out.exists():
        out.mkdir(parents=True)
        return
    remove_stale_temporaries(out, RUN_FILES)
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    ours = [name for name in RUN_FILES if name in entries and _is_ours(out / name)]
    foreign = _foreign(out)
    if foreign:
        raise RunError(
            f"--out {out}: holds {', '.join(foreign)}, which is not a chainrule file (or is "
            "damaged); chainrule will not replace it: move it away or choose another --out"
        )
    if not overwrite:
        held = "an earlier chainrule run" if ours else f"other files ({', '.join(entries[:3])})"
        raise RunError(
            f"--out {out}: already holds {held}; continue it with --resume, replace it with "
            "--overwrite (only chainrule's own files are deleted), or choose another --out"
        )
    for name in ours:
        (out / name).unlink()


def claim_for_resume(out: Path) -> None:
    """Check that ``out`` holds a run to continue whose files are all chainrule's; clean up."""
    if not (out / CONFIG).is_file():
        raise RunError(
            f"--resume: no run to continue in {out} (no {CONFIG}); start one with --out {out}"
        )
    # the checkpoint is not judged here: loading it says precisely what is wrong with it
    foreign = _foreign(out, [name for name in RUN_FILES if name != CHECKPOINT])
    if foreign:
        raise RunError(
            f"--resume: {out} holds {', '.join(foreign)}, which is not a chainrule file (or is "
            "damaged); chainrule will not replace it: move it away first"
        )
    remove_stale_temporaries(out, RUN_FILES)


# -- writing a run (each file atomically) --------------------------------------------------------


def write_config(out: Path, config: Config) -> None:
    """``config.json``: the settings, with those chosen for the task filled in."""
    io.write_json(Path(out) / CONFIG, config.to_dict())


def write_history(out: Path, history: History) -> None:
    """``history.csv``: one row of losses and metrics per epoch."""
    atomic_write(Path(out) / HISTORY, history.to_csv().encode())


def write_model(out: Path, model, metadata: dict) -> None:
    """``model.safetensors`` + ``model.json``: weights, architecture and ``metadata`` (the
    preprocessing ``predict`` needs: see :func:`load_run`), once the preprocessing is known to
    be readable (the reader's checks, made before anything is written)."""
    check_preprocessing(metadata.get("preprocessing"), f"{Path(out) / MODEL}")
    io.save(model, Path(out) / "model", metadata=metadata)


def write_metrics(out: Path, metrics: dict) -> None:
    """``metrics.json``: the test results (``test_accuracy`` or ``test_r2``, ``test_loss``, ...)."""
    io.write_json(Path(out) / METRICS, metrics)


def write_run(
    out,
    config: Config,
    model,
    metadata: dict,
    history: History,
    metrics: dict,
    overwrite: bool = False,
) -> Path:
    """Write a finished run trained elsewhere (no checkpoint: it cannot be resumed) into
    ``out``, claimed as ``train`` claims it, so that ``evaluate``, ``predict``, ``info`` and the
    lens read it as one of ``train``'s. Returns ``out``."""
    out = Path(out)
    if not len(history):
        raise RunError(f"{out}: a run folder needs at least one epoch of history")
    claim(out, overwrite)
    write_config(out, config)
    write_history(out, history)
    write_model(out, model, metadata)
    write_metrics(out, metrics)
    return out


def unique_default_folder(stamp: str) -> Path:
    """``runs/<stamp>``, or ``runs/<stamp>-2``, ... if that exists already."""
    out, n = Path("runs") / stamp, 1
    while out.exists():
        n += 1
        out = Path("runs") / f"{stamp}-{n}"
    return out


# -- reading a run (never writes) ----------------------------------------------------------------


def saved_config(run_dir) -> Config:
    """The settings a run folder was trained with (``download`` is always off: reading a run
    never fetches data; a relative ``data`` path is taken from the run folder)."""
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise RunError(f"{run_dir}: no such folder")
    if not path.exists():
        raise RunError(f"{run_dir}: no {CONFIG}, not a chainrule run folder")
    config = Config.from_dict(io.read_json(path), source=str(path), recorded=True)
    if config.data is not None and not Path(config.data).is_absolute():
        if Path(config.data).name != config.data or config.data in (".", ".."):
            raise RunError(f"{path}: data {config.data!r} must be a file in the run folder")
        config = dataclasses.replace(config, data=str(Path(run_dir) / config.data))
    return dataclasses.replace(config, download=False)


def load_run(run_dir, text_run: bool = False) -> tuple:
    """(model, config, metadata) of a run folder, every part checked: a model whose files do not
    agree with its preprocessing, whose weights or preprocessing hold NaN/Infinity, or whose
    standardisation divides by zero is refused; so is a regression whose target scaling (what
    predictions are multiplied by and shifted by) is not finite or is zero.

    A text run (a character model, see :mod:`.text`) is refused unless ``text_run`` says the
    caller reads one (``evaluate``, ``info``): the commands for networks of images and tables
    (``predict``, ``export``, the lens) would otherwise fail on its model part-way."""
    run_dir = Path(run_dir)
    config = saved_config(run_dir)
    if not (run_dir / MODEL).exists() and not (run_dir / MODEL).is_symlink():
        # config.json is written first, metrics.json last: a folder with a checkpoint or a
        # history, or without metrics, is a run cut short
        interrupted = not (run_dir / METRICS).exists() or any(
            (run_dir / name).exists() for name in (CHECKPOINT, HISTORY)
        )
        raise RunError(
            f"{run_dir}: no trained model yet (training stopped before its first epoch ended); "
            f"continue it with: chainrule train --out {run_dir} --resume"
            if interrupted
            else f"{run_dir}: no trained model here (expected {MODEL})"
        )
    model = io.load(run_dir / "model")
    metadata = io.read_metadata(run_dir / "model")
    where = f"{run_dir / MODEL}"
    check_preprocessing(metadata.get("preprocessing"), where)
    shape = metadata["preprocessing"]["input_shape"]
    for name, value in model.state_dict().items():
        if not xp.all(xp.isfinite(as_array(value))):
            raise RunError(f"{where}: '{name}' holds NaN or Infinity; the model cannot answer")
    if task_of(metadata) == "text":
        if not text_run:
            raise RunError(
                f"{run_dir}: a text run (a character model), which this command does not take; "
                f"sample from it with: chainrule generate {run_dir}"
            )
        if not isinstance(model, text.CharModel) or model.vocab_size != len(
            metadata["preprocessing"]["vocabulary"]
        ):
            raise RunError(f"{where}: the model does not match the run's vocabulary")
        return model, config, metadata
    try:
        footprint = models.footprint_of_model(model, tuple(shape))
        models.check_memory(footprint, batch_size=1, training=False)
    except ValueError as exc:
        raise RunError(f"{where}: {exc}") from None
    if task_of(metadata) == "regression" and _outputs(model, tuple(shape)) not in (None, (1,)):
        raise RunError(
            f"{where}: a regression model has one output neuron, this one has "
            f"{_outputs(model, tuple(shape))}"
        )
    return model, config, metadata


def check_preprocessing(preprocessing, where: str) -> None:
    """Refuse preprocessing that ``predict`` could not apply: the checks :func:`load_run`
    makes, and :func:`write_model` too, so that a run is never written that cannot be read."""
    if not isinstance(preprocessing, dict):
        raise RunError(
            f"{where}: no preprocessing recorded; not a model trained by chainrule train"
        )
    shape = preprocessing.get("input_shape")
    if not (isinstance(shape, list) and shape and all(_positive_int(n) for n in shape)):
        raise RunError(f"{where}: preprocessing input_shape {shape!r:.60} is not a list of sizes")
    pixel_max = preprocessing.get("pixel_max")
    if pixel_max is not None and not (_real(pixel_max) and pixel_max > 0):
        raise RunError(
            f"{where}: preprocessing pixel_max {pixel_max!r:.60} is not a positive number"
        )
    if preprocessing.get("task") != "text":  # a text model reads character indices as they are
        try:
            Standardizer.from_dict(preprocessing)
        except ValueError as exc:
            raise RunError(f"{where}: {exc}") from None
    _check_task(preprocessing, where)


def _outputs(model, shape: tuple) -> tuple | None:
    """The model's output shape for one input (None where a layer cannot be followed)."""
    for layer in model:
        shape = models.output_shape(layer, shape)
        if shape is None:
            return None
    return shape


def task_of(metadata: dict) -> str:
    """``"classification"`` or ``"regression"`` (runs from before regression are the former)."""
    return metadata["preprocessing"].get("task") or "classification"


MAX_NAMES = 1 << 16


def _check_task(preprocessing: dict, where: str) -> None:
    """The task and what goes with it: for a regression, a finite target mean and a finite,
    positive target scale (predictions are ``output * target_std + target_mean``); names of
    features and classes as short lists of strings (or class numbers)."""
    task = preprocessing.get("task")
    if task is not None and task not in TASKS:
        raise RunError(f"{where}: preprocessing task {task!r:.60} is not one of {', '.join(TASKS)}")
    if task == "text":
        text.check_vocabulary(preprocessing, where)
    if task == "regression":
        mean, std = preprocessing.get("target_mean"), preprocessing.get("target_std")
        if not (_real(mean) and _real(std) and std > 0):
            raise RunError(
                f"{where}: preprocessing target_mean {mean!r:.40} and target_std {std!r:.40} "
                "must be finite numbers and target_std above zero; the model cannot undo the "
                "scaling of its targets"
            )
    for key in ("feature_names", "classes"):
        names = preprocessing.get(key)
        if names is None:
            continue
        if not (isinstance(names, list) and len(names) <= MAX_NAMES):
            raise RunError(f"{where}: preprocessing {key} is not a list of names")
        if not all(isinstance(n, str) and len(n) <= MAX_NAME or _real(n) for n in names):
            raise RunError(f"{where}: preprocessing {key} holds something other than names")
    names = preprocessing.get("feature_names")
    if names is not None and [len(names)] != preprocessing["input_shape"]:
        raise RunError(
            f"{where}: preprocessing names {len(names)} features, the input shape is "
            f"{preprocessing['input_shape']}"
        )


def _positive_int(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1 << 24


def _real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_data(run_dir, config: Config, metadata: dict):
    """The test examples of a trained run's data set (or of ``config.dataset``), prepared with
    the statistics the run recorded. Refuses a CSV file that changed since the run."""
    check_choices(config)
    preprocessing = metadata["preprocessing"]
    recorded = preprocessing.get("data_sha256")
    if config.dataset in ("csv", "text") and recorded and sha256_of(Path(config.data)) != recorded:
        raise RunError(
            f"{config.data} has changed since {run_dir} was trained (its SHA-256 differs): its "
            "test rows would not be the ones the run was tested on"
        )
    return prepare(config, recorded=preprocessing)


def evaluate_run(run_dir, dataset: str | None = None, data_dir: str | None = None) -> dict:
    """Test loss and accuracy of a trained run (on its own data set, or another of the same
    shape), or for a regression its test MSE, RMSE, MAE and R^2 in the targets' units, or for
    text the loss per character and the perplexity on its test lines."""
    model, config, metadata = load_run(run_dir, text_run=True)
    config = dataclasses.replace(
        config,
        dataset=dataset or config.dataset,
        data_dir=data_dir or config.data_dir,
        val_fraction=0.0,
        task=task_of(metadata),
    )
    prepared = test_data(run_dir, config, metadata)
    trained_on = tuple(metadata["preprocessing"]["input_shape"])
    if prepared.input_shape != trained_on:
        raise RunError(
            f"{config.dataset} has inputs of shape {prepared.input_shape}, the model in "
            f"{run_dir} was trained on {trained_on}"
        )
    loss_fn = build_loss(config, prepared.outputs, prepared.task)
    if prepared.task == "text":  # its layers do not lay out their memory: the training batch
        results = evaluate(model, loss_fn, prepared.test, config.batch_size, accuracy=False)
        return results | {"perplexity": text.perplexity(results["loss"])}
    footprint = models.footprint_of_model(model, trained_on)
    batch = models.fitting_batch(footprint, 1000)
    return evaluate(model, loss_fn, prepared.test, batch, target_std=prepared.target_std)


def describe_task(model, metadata: dict) -> str:
    """What the run learned to predict, in a line or two (for ``chainrule info``); for a
    regression without hidden layers, the fitted equation in the data's own units."""
    preprocessing = metadata["preprocessing"]
    if task_of(metadata) == "text":
        shown = "".join(preprocessing["vocabulary"]).replace("\n", "\\n")
        return (
            f"task: text, the next character of {preprocessing['input_shape'][0]} at a time, "
            f"over {len(preprocessing['vocabulary'])} characters: {shown[:80]}"
        )
    if task_of(metadata) == "classification":
        classes = preprocessing.get("classes")
        if preprocessing.get("target") is not None:
            return f"task: classification, is it a {preprocessing['target']} or not"
        if classes:
            shown = ", ".join(map(str, classes[:20])) + (", ..." if len(classes) > 20 else "")
            return f"task: classification into {len(classes)} classes: {shown}"
        return "task: classification"
    name = preprocessing.get("target_name") or "the target"
    mean, std = preprocessing["target_mean"], preprocessing["target_std"]
    lines = [
        f"task: regression of {name} (trained on (y - {mean:.6g}) / {std:.6g}; predictions and "
        "metrics are in the units of y)"
    ]
    equation = linear_equation(model, preprocessing)
    if equation is not None:
        lines.append(f"the fitted function: {equation}")
    return "\n".join(lines)


def linear_equation(model, preprocessing: dict, max_terms: int = 20) -> str | None:
    """``y = a1 x1 + ... + b`` for a regression network that is one Linear layer, in the data's
    units: the network computes ``y = std (w . (x / pixel_max - mu) / sigma + c) + mean``, so
    ``a_i = std w_i / (sigma_i pixel_max)`` and ``b = mean + std (c - sum_i w_i mu_i / sigma_i)``.
    None for any other network, or one with more than ``max_terms`` inputs."""
    from ..nn import Linear, PlaneFeatures

    layers = list(model)
    if layers and isinstance(layers[0], PlaneFeatures):
        # the playground's features layer keeps the function linear only when it passes the
        # inputs through unchanged
        if layers[0].features != ["x", "y"][: layers[0].in_features]:
            return None
        layers = layers[1:]
    if len(layers) != 1 or not isinstance(layers[0], Linear) or layers[0].in_features > max_terms:
        return None
    linear = layers[0]
    w = as_array(linear.weight).astype(xp.float64)[0]
    c = float(as_array(linear.bias)[0]) if linear.bias is not None else 0.0
    standardizer = Standardizer.from_dict(preprocessing)
    mu = xp.broadcast_to(xp.asarray(standardizer.mean, dtype=xp.float64), w.shape)
    sigma = xp.broadcast_to(xp.asarray(standardizer.std, dtype=xp.float64), w.shape)
    pixel_max = preprocessing.get("pixel_max") or 1.0
    mean, std = preprocessing["target_mean"], preprocessing["target_std"]
    slopes = std * w / (sigma * pixel_max)
    intercept = mean + std * (c - float((w * mu / sigma).sum()))
    names = preprocessing.get("feature_names") or [f"x{i + 1}" for i in range(len(w))]
    target = preprocessing.get("target_name") or "y"
    terms = " ".join(
        f"{'-' if a < 0 else '+'} {abs(a):.4g} {n}" if i else f"{a:.4g} {n}"
        for i, (a, n) in enumerate(zip(slopes, names))
    )
    return f"{target} = {terms} {'-' if intercept < 0 else '+'} {abs(intercept):.4g}"
