"""``chainrule predict`` on your own pictures: a drawing or photo of any size, dark on light or
light on dark, made to look like the images the network was trained on.

The digit sets were made by scanning ink on paper, then cropping, scaling and centring each digit
in a fixed way; a picture is prepared the same way before the network sees it:

* for the digit and clothing sets: grey levels in [0, 1]; inverted when the background (the
  median of the border) is light, as their training images are light ink on black; the background
  level taken off and the ink stretched to full contrast;
* **MNIST** (LeCun et al.): the ink's bounding box scaled (aspect kept, anti-aliased) to fit a
  20x20 box, placed in 28x28 with its centre of mass at the centre (pixel 14, 14);
* **digits** (UCI optdigits, scikit-learn's 8x8): the ink's box scaled to fill 32x32 and each 4x4
  block's ink counted (0..16), that is: the box scaled to fill 8x8 by averaging over areas;
* **Fashion-MNIST**: the product's box scaled to fit 28x28 (longest side 28), centred;
* any other image set (your own folder of pictures, faces): the whole picture resized to the
  model's input size, as training resized it.

A picture already of the model's size, light on dark, is taken as it is. :func:`to_training_image`
says in words what it did, for the one line ``predict`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..backend import xp
from ..data.images import resized
from .config import RunError

# data set -> (side of the box the ink's bounding box is scaled into, how it is centred)
DRAWN_SETS = {
    "mnist": (20, "centre of mass"),
    "digits": (8, "box"),
    "fashion-mnist": (28, "box"),
}
INK = 0.05  # a pixel is ink where it is above this fraction of the brightest (after the background)


@dataclass
class TrainingImage:
    """What the network sees (grey levels in [0, 1], its input size) and what was done to get it
    (``steps``, in words; empty when the picture was taken as it is)."""

    pixels: xp.ndarray
    steps: list = field(default_factory=list)

    def described(self) -> str:
        return "; ".join(self.steps)


def to_training_image(grey: xp.ndarray, shape: tuple, dataset: str | None) -> TrainingImage:
    """``grey`` (any size, levels in [0, 1]) as an image of ``shape`` made the way the training
    images of ``dataset`` were made (see the module docstring)."""
    height, width = grey.shape
    if dataset not in DRAWN_SETS:
        if grey.shape == tuple(shape):
            return TrainingImage(grey)
        steps = [f"resized {width}x{height} to {shape[1]}x{shape[0]}"]
        return TrainingImage(resized(grey, shape[1], shape[0]), steps)
    steps = []
    background = float(xp.median(xp.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])))
    if background > 0.5:
        grey, background = 1.0 - grey, 1.0 - background
        steps.append("inverted (light background)")
    if grey.shape == tuple(shape) and not steps:
        return TrainingImage(grey)
    ink = xp.clip(grey - background, 0.0, None)
    if not ink.max() > 0:
        raise RunError(
            f"{width}x{height} pixels, all one grey: nothing to scale into the model's "
            f"{tuple(shape)} inputs"
        )
    ink /= ink.max()
    rows, cols = xp.nonzero(ink > INK)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    box, centring = DRAWN_SETS[dataset]
    scale = box / max(bottom - top, right - left)
    size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
    patch = resized(ink[top:bottom, left:right], *size)
    patch /= max(float(patch.max()), 1e-12)
    canvas = xp.zeros(shape, dtype=xp.float32)
    y, x = _placement(patch, shape, centring)
    canvas[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    steps.append(
        f"the ink ({right - left}x{bottom - top} pixels) scaled to {size[0]}x{size[1]} and "
        f"centred by its {centring} in {shape[1]}x{shape[0]}, as {dataset} was made"
    )
    return TrainingImage(canvas, steps)


def _placement(patch: xp.ndarray, shape: tuple, centring: str) -> tuple[int, int]:
    """Top-left corner of ``patch`` in a canvas of ``shape``: its box's centre, or its centre of
    mass (as MNIST: at pixel (14, 14) of 28x28), at the canvas's centre, kept inside it."""
    if centring == "box":
        return (shape[0] - patch.shape[0] + 1) // 2, (shape[1] - patch.shape[1] + 1) // 2
    mass = patch.sum()
    cy = float((patch.sum(axis=1) * xp.arange(patch.shape[0])).sum() / mass)
    cx = float((patch.sum(axis=0) * xp.arange(patch.shape[1])).sum() / mass)
    y, x = round(shape[0] / 2 - cy), round(shape[1] / 2 - cx)
    return (
        min(max(y, 0), shape[0] - patch.shape[0]),
        min(max(x, 0), shape[1] - patch.shape[1]),
    )


ROW_HEIGHT = 112  # pixels of each row of the --show picture


def write_seen(path, results: list) -> None:
    """A PNG with one row per picture of ``results`` (from ``predict_files``): the picture as
    given, what the network saw (its input pixels, enlarged without smoothing) and the answer."""
    import io

    from PIL import Image, ImageDraw

    from ..files import atomic_write

    rows = []
    for result in results:
        given = _as_image(result["input"].picture)
        given = given.resize(
            (
                max(1, min(2 * ROW_HEIGHT, round(given.width * ROW_HEIGHT / given.height))),
                ROW_HEIGHT,
            )
        )
        seen = _as_image(result["input"].seen)
        seen = seen.resize(
            (max(1, round(seen.width * ROW_HEIGHT / seen.height)), ROW_HEIGHT),
            Image.Resampling.NEAREST,
        )
        row = Image.new("L", (given.width + seen.width + 3 * 8 + 200, ROW_HEIGHT + 16), 255)
        row.paste(given, (8, 8))
        row.paste(seen, (given.width + 16, 8))
        answer = f"network saw this:\n{result['prediction']}"
        if "top" in result:
            answer += f" (p = {result['top'][0][1]:.3f})"
        ImageDraw.Draw(row).text((given.width + seen.width + 24, 8), answer, fill=0)
        rows.append(row)
    sheet = Image.new("L", (max(r.width for r in rows), sum(r.height for r in rows)), 255)
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())


def _as_image(grey):
    from PIL import Image

    return Image.fromarray((xp.clip(grey, 0.0, 1.0) * 255).round().astype(xp.uint8), mode="L")
