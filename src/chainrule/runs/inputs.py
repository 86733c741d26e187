"""``chainrule predict``: inputs from image, ``.npy`` or CSV files, read the way they look and
checked before the model sees them.

* Images are read at their own bit depth: an 8-bit pixel v and a 16-bit pixel 257 v are the same
  grey (a 16-bit PNG is not clipped to black and white). Any size and polarity is taken and made
  to look like the training images (:mod:`.drawings`: a drawing of a digit, black on white, is
  inverted, cropped, scaled and centred as MNIST's or the digits' were); the size comes from the
  file's header and is checked before any pixel is decoded (a 30000x30000 PNG is refused in
  microseconds).
* ``.npy`` files are memory-mapped to read their header (never ``allow_pickle``); the shape must
  be the model's input shape before anything is copied, so a header declaring 10^12 elements
  costs nothing.
* A CSV file holds one input a row, under a header naming the columns the model was trained on
  (a run on a table: a CSV file, ``diabetes``, ``california``, ``line``, ...); the target
  column may be there too and is ignored.
* NaN or infinite inputs are refused: the model would answer them with NaN probabilities.
* A regression model's output is turned back into the target's units: ``output * target_std +
  target_mean`` (its targets were standardised in training).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import data
from ..backend import ignore_float_errors, xp
from ..data.images import read_grey
from ..files import DataFileError, open_regular, regular_file_size
from ..train import predict
from .config import RunError
from .drawings import to_training_image
from .folder import load_run, task_of

NPY_MAGIC = b"\x93NUMPY"
FAR = 6  # standard deviations from the training mean


@dataclass
class Input:
    """One input as the network gets it (preprocessed as in training), and for a picture what it
    looked like (``picture``, grey levels), what the network saw (``seen``: grey levels at its
    input size, before standardising) and what was done between them (``steps``, in words)."""

    values: object
    picture: object = None
    seen: object = None
    steps: str = ""


def read_input(path: Path, preprocessing: dict, dataset: str | None = None) -> Input:
    """One input for the network from a PNG/JPEG or .npy file, preprocessed as in training; a
    picture is made to look like the images of ``dataset`` first (see :mod:`.drawings`)."""
    expected = tuple(preprocessing["input_shape"])
    pixel_max = preprocessing["pixel_max"] or 1.0
    try:
        regular_file_size(path)
    except DataFileError as exc:
        raise RunError(str(exc)) from None
    if path.suffix == ".npy":
        return Input(_standardised(_read_npy(path, expected) / pixel_max, preprocessing, path))
    picture = _read_image(path, expected)
    try:
        prepared = to_training_image(picture, expected, dataset)
    except RunError as exc:
        raise RunError(f"{path}: {exc}") from None
    values = _standardised(prepared.pixels, preprocessing, path)
    return Input(values, picture, prepared.pixels, prepared.described())


def _standardised(values, preprocessing: dict, where):
    if not xp.all(xp.isfinite(values)):
        raise RunError(f"{where}: holds NaN or Infinity; the model cannot answer it")
    with ignore_float_errors():  # a value beyond float32's range shows as inf, refused below
        scaled = data.Standardizer.from_dict(preprocessing)(values)
    if not xp.all(xp.isfinite(scaled)):
        raise RunError(f"{where}: holds values too large for the model (beyond float32's range)")
    return scaled


def read_rows(path: Path, preprocessing: dict):
    """``(labels, inputs)``: each row of a CSV file as one input, preprocessed as in training,
    labelled ``FILE, line N``."""
    names = preprocessing.get("feature_names")
    if not names:
        raise RunError(
            f"{path}: this model was trained on inputs of shape "
            f"{tuple(preprocessing['input_shape'])} with no column names; give .npy files"
        )
    target = preprocessing.get("target_name")
    try:
        values, line_numbers = data.read_features(path, names, ignore=(target,) if target else ())
    except data.CSVError as exc:
        raise RunError(str(exc)) from None
    return [f"{path}, line {n}" for n in line_numbers], _standardised(values, preprocessing, path)


def _read_npy(path: Path, expected: tuple):
    with open_regular(path) as f:
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise RunError(f"{path}: not a .npy file (no NumPy header)")
    try:
        mapped = xp.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise RunError(f"{path}: not a readable .npy file ({exc})") from None
    if mapped.dtype.kind not in "biuf":
        raise RunError(f"{path}: holds {mapped.dtype} values; the model needs numbers")
    if mapped.shape != expected:
        raise RunError(f"{path}: has shape {mapped.shape}, but the model expects {expected} inputs")
    return xp.array(mapped, dtype=xp.float64)


def _read_image(path: Path, expected: tuple):
    """Grey levels in [0, 1] of an image of any size (see :func:`~chainrule.data.images.read_grey`)."""
    if len(expected) != 2:
        raise RunError(
            f"{path}: the model takes inputs of shape {expected}, not images; give a .npy or "
            ".csv file"
        )
    return read_grey(path)


def predict_files(run_dir, paths, top: int = 3) -> list[dict]:
    """For each file (each row of a CSV file): the prediction, and for classes the top
    probabilities.

    A classification's prediction is the most activated output neuron's class (its name, where
    the data named its classes; for a one-vs-rest run "K" or "not K"); a regression's is the
    predicted value in the target's units, with a ``warning`` where the input lies outside the
    range the model was trained on. A picture's result also holds ``input`` (see :class:`Input`).
    """
    model, _, metadata = load_run(run_dir)
    preprocessing = metadata["preprocessing"]
    regression = task_of(metadata) == "regression"
    names = class_names(preprocessing)
    results = []
    for path in map(Path, paths):
        if path.suffix.lower() == ".csv":
            labels, inputs = read_rows(path, preprocessing)
            pictures = [None] * len(labels)
        else:
            read = read_input(path, preprocessing, metadata.get("dataset"))
            labels, inputs, pictures = [str(path)], read.values[None], [read]
        outputs = predict(model, inputs)
        for label, values, output, picture in zip(labels, inputs, outputs, pictures):
            if not xp.all(xp.isfinite(output)):
                raise RunError(f"{label}: the model's output is not finite for this input")
            result = {"file": label}
            if picture is not None and picture.picture is not None:
                result["input"] = picture
            if regression:
                value = float(output[0]) * preprocessing["target_std"]
                result["prediction"] = value + preprocessing["target_mean"]
                warning = outside_training_range(values, preprocessing)
                if warning:
                    result["warning"] = warning
                results.append(result)
                continue
            probabilities = _probabilities(output)
            order = xp.argsort(-probabilities)[:top]
            result["prediction"] = names(int(order[0]))
            result["top"] = [(names(int(i)), float(probabilities[i])) for i in order]
            results.append(result)
    return results


def class_names(preprocessing: dict):
    """Index -> what the class is called: the data's names, "K" / "not K" for a one-vs-rest run
    (``--target K``), or the index itself."""
    classes = preprocessing.get("classes") or None
    target = preprocessing.get("target")
    if isinstance(target, int):
        named = classes[target] if classes and target < len(classes) else target
        return lambda i: str(named) if i == 1 else f"not {named}"
    return (lambda i: classes[i]) if classes else int


def outside_training_range(values, preprocessing: dict) -> str:
    """A warning where standardised inputs lie far outside what training saw: beyond the range
    of the training inputs by more than a standard deviation (for runs that did not record the
    range: more than :data:`FAR` standard deviations from the mean). The model extrapolates
    there, and its answer may be far off (a patient's age in years given to a model trained on
    standardised ages)."""
    mean, std = (xp.broadcast_to(preprocessing[k], values.shape) for k in ("mean", "std"))
    raw = values * std + mean
    low, high = _training_range(preprocessing, values.shape)
    if low is None:
        far = xp.abs(values) > FAR
    else:
        far = (raw < low - std) | (raw > high + std)
    if not far.any():
        return ""
    names = preprocessing.get("feature_names") or []
    shown = []
    for i in xp.flatnonzero(far)[:3]:
        name = names[i] if i < len(names) else f"input {i}"
        if low is None:
            shown.append(f"{name} = {float(raw[i]):g}, {float(values[i]):+.0f} sd from the mean")
        else:
            trained = f"{float(low[i]):.3g} to {float(high[i]):.3g}"
            shown.append(f"{name} = {float(raw[i]):g}, trained on {trained}")
    return (
        f"far outside the training data ({'; '.join(shown)}): the answer is an extrapolation; "
        "are the inputs in the units the model was trained on?"
    )


def _training_range(preprocessing: dict, shape: tuple):
    """``(low, high)`` of the training inputs as the run recorded them, or ``(None, None)``
    where it did not (or recorded something that is not two rows of numbers of ``shape``)."""
    try:
        low, high = (xp.asarray(v, dtype=xp.float64) for v in preprocessing["feature_range"])
    except (KeyError, TypeError, ValueError):
        return None, None
    return (low, high) if low.shape == high.shape == shape else (None, None)


def _probabilities(output):
    """Softmax of the outputs, or [1 - p, p] for a single (one-vs-rest) output."""
    if output.shape == (1,):  # one-vs-rest: a single logit, through a sigmoid that
        z = float(output[0])  # cannot overflow: exp of a negative number only
        p = 1 / (1 + xp.exp(-z)) if z >= 0 else xp.exp(z) / (1 + xp.exp(z))
        return xp.array([1 - p, p])
    shifted = xp.exp(output - output.max())
    return shifted / shifted.sum()
