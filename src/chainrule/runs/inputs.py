"""``chainrule predict``: inputs from image, ``.npy`` or CSV files, read the way they look and
checked before the model sees them.

* Images are read at their own bit depth: an 8-bit pixel v and a 16-bit pixel 257 v are the same
  grey (a 16-bit PNG is not clipped to black and white). The size comes from the file's header
  and must be the model's input size before any pixel is decoded (a 30000x30000 PNG is refused
  in microseconds).
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

import warnings
from pathlib import Path

from .. import data
from ..backend import ignore_float_errors, xp
from ..files import DataFileError, open_regular, regular_file_size
from ..train import predict
from .config import RunError
from .folder import load_run, task_of

NPY_MAGIC = b"\x93NUMPY"
# full scale of each Pillow mode we read: 16-bit greys ("I;16*", or "I" as Pillow also reads
# them) span 0..65535, everything else is converted to 8-bit grey first
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def read_input(path: Path, preprocessing: dict):
    """One input for the network from a PNG/JPEG (grayscale) or .npy file, preprocessed as in
    training."""
    expected = tuple(preprocessing["input_shape"])
    pixel_max = preprocessing["pixel_max"] or 1.0
    try:
        regular_file_size(path)
    except DataFileError as exc:
        raise RunError(str(exc)) from None
    if path.suffix == ".npy":
        values = _read_npy(path, expected) / pixel_max
    else:
        values = _read_image(path, expected)
    return _standardised(values, preprocessing, path)


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
    """Grey levels in [0, 1] of an image whose size must match ``expected`` (H, W)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise RunError("reading images needs Pillow: pip install pillow") from None
    if len(expected) != 2:
        raise RunError(
            f"{path}: the model takes inputs of shape {expected}, not images; give a .npy or "
            ".csv file"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size
            with Image.open(path) as image:
                width, height = image.size
                if (height, width) != expected:
                    raise RunError(
                        f"{path}: is {width}x{height} pixels, shape {(height, width)}, but the "
                        f"model expects {expected} inputs"
                    )
                if image.mode in SIXTEEN_BIT_MODES:
                    return xp.asarray(image, dtype=xp.float32) / 65535.0
                if image.mode == "F":
                    raise RunError(
                        f"{path}: a floating-point image has no agreed grey scale; save it as "
                        "an 8- or 16-bit PNG, or as .npy"
                    )
                return xp.asarray(image.convert("L"), dtype=xp.float32) / 255.0
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise RunError(f"{path}: not a readable image ({exc})") from None


def predict_files(run_dir, paths, top: int = 3) -> list[dict]:
    """For each file (each row of a CSV file): the prediction, and for classes the top
    probabilities.

    A classification's prediction is the most activated output neuron's class (its name, where
    the data named its classes); a regression's is the predicted value in the target's units.
    """
    model, _, metadata = load_run(run_dir)
    preprocessing = metadata["preprocessing"]
    regression = task_of(metadata) == "regression"
    classes = preprocessing.get("classes") or None
    results = []
    for path in map(Path, paths):
        if path.suffix.lower() == ".csv":
            labels, inputs = read_rows(path, preprocessing)
        else:
            labels, inputs = [str(path)], read_input(path, preprocessing)[None]
        outputs = predict(model, inputs)
        for label, output in zip(labels, outputs):
            if not xp.all(xp.isfinite(output)):
                raise RunError(f"{label}: the model's output is not finite for this input")
            if regression:
                value = float(output[0]) * preprocessing["target_std"]
                results.append({"file": label, "prediction": value + preprocessing["target_mean"]})
                continue
            probabilities = _probabilities(output)
            order = xp.argsort(-probabilities)[:top]
            name = (lambda i: classes[i]) if classes else int
            results.append(
                {
                    "file": label,
                    "prediction": name(int(order[0])),
                    "top": [(name(int(i)), float(probabilities[i])) for i in order],
                }
            )
    return results


def _probabilities(output):
    """Softmax of the outputs, or [1 - p, p] for a single (one-vs-rest) output."""
    if output.shape == (1,):  # one-vs-rest: a single logit, through a sigmoid that
        z = float(output[0])  # cannot overflow: exp of a negative number only
        p = 1 / (1 + xp.exp(-z)) if z >= 0 else xp.exp(z) / (1 + xp.exp(z))
        return xp.array([1 - p, p])
    shifted = xp.exp(output - output.max())
    return shifted / shifted.sum()
