"""Run folders on disk: which files are chainrule's, claiming a folder to train into, and
reading a finished (or interrupted) run back without changing anything.

Rules that keep a user's data safe:

* ``train`` writes only into a folder that is new or empty, or, with ``--overwrite``, one that
  holds an earlier chainrule run: then it first deletes that run's files (so no old model, metrics
  or checkpoint can be mistaken for the new run's) and leaves every other file alone. A file with
  one of the run files' names that chainrule did not write is never replaced: the run is refused.
* A file counts as chainrule's when its content says so: ``config.json`` holds only settings,
  ``model.json`` and the ``.safetensors`` files carry chainrule's format markers, ``metrics.json``
  a test accuracy, ``history.csv`` starts with its ``epoch`` column.
* Temporary files of a killed write (``.<name>.<random>.tmp``) are removed when ``train`` next
  claims the folder. Reading a run (``evaluate``, ``predict``, ``info``) never writes, creates,
  removes or downloads anything, whatever its ``config.json`` says.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from .. import io, models
from ..backend import xp
from ..data import Standardizer
from ..data.files import DataFileError, open_regular, remove_stale_temporaries
from ..tensor import as_array
from ..train import evaluate
from .config import Config, RunError
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
            Config.from_dict(io.read_json(path))
            return True
        if path.name == METRICS:
            return "test_accuracy" in io.read_json(path)
        if path.name == MODEL_JSON:
            return io.read_json(path).get("format") == "chainrule.Sequential"
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
    never fetches data)."""
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise RunError(f"{run_dir}: no such folder")
    if not path.exists():
        raise RunError(f"{run_dir}: no {CONFIG}, not a chainrule run folder")
    return dataclasses.replace(
        Config.from_dict(io.read_json(path), source=str(path)), download=False
    )


def load_run(run_dir) -> tuple:
    """(model, config, metadata) of a run folder, every part checked: a model whose files do not
    agree with its preprocessing, whose weights or preprocessing hold NaN/Infinity, or whose
    standardisation divides by zero is refused."""
    run_dir = Path(run_dir)
    config = saved_config(run_dir)
    if not (run_dir / MODEL).exists():
        interrupted = (run_dir / CHECKPOINT).exists() or (run_dir / HISTORY).exists()
        raise RunError(
            f"{run_dir}: no trained model yet (training stopped before its first epoch ended); "
            f"continue it with: chainrule train --out {run_dir} --resume"
            if interrupted
            else f"{run_dir}: no trained model here (expected {MODEL})"
        )
    model = io.load(run_dir / "model")
    metadata = io.read_metadata(run_dir / "model")
    where = f"{run_dir / MODEL}"
    preprocessing = metadata.get("preprocessing")
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
    try:
        Standardizer.from_dict(preprocessing)
    except ValueError as exc:
        raise RunError(f"{where}: {exc}") from None
    for name, value in model.state_dict().items():
        if not xp.all(xp.isfinite(as_array(value))):
            raise RunError(f"{where}: '{name}' holds NaN or Infinity; the model cannot answer")
    try:
        footprint = models.footprint_of_model(model, tuple(shape))
        models.check_memory(footprint, batch_size=1, training=False)
    except ValueError as exc:
        raise RunError(f"{where}: {exc}") from None
    return model, config, metadata


def _positive_int(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1 << 24


def _real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def evaluate_run(run_dir, dataset: str | None = None, data_dir: str | None = None) -> dict:
    """Test loss and accuracy of a trained run (on its own data set, or another of the same shape)."""
    model, config, metadata = load_run(run_dir)
    config = dataclasses.replace(
        config,
        dataset=dataset or config.dataset,
        data_dir=data_dir or config.data_dir,
        val_fraction=0.0,
    )
    check_choices(config)
    prepared = prepare(config)
    trained_on = tuple(metadata["preprocessing"]["input_shape"])
    if prepared.input_shape != trained_on:
        raise RunError(
            f"{config.dataset} has inputs of shape {prepared.input_shape}, the model in "
            f"{run_dir} was trained on {trained_on}"
        )
    footprint = models.footprint_of_model(model, trained_on)
    batch = models.fitting_batch(footprint, 1000)
    return evaluate(model, build_loss(config, prepared.outputs), prepared.test, batch)
