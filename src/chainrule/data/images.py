"""Your own pictures: one image file as grey levels, and a folder of them, one subfolder per class
(the common image-folder layout, as torchvision's ``ImageFolder`` reads it)::

    pets/cat/001.jpg  pets/cat/002.png  ...  pets/dog/001.jpg  ...

* Images are read at their own bit depth (an 8-bit pixel v and a 16-bit pixel 257 v are the same
  grey) and converted to grey; the size comes from the file's header and is checked before any
  pixel is decoded (a 30000x30000 PNG is refused in microseconds).
* In a folder, a file that is not a readable image (a text file, a truncated JPEG, a picture of
  too many pixels) is skipped and named, never a crash: :class:`ImageFolder` lists them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..backend import xp
from ..files import DataError

MAX_PIXELS = 4096 * 4096  # a 16-megapixel photo; larger pictures are to be scaled down first
MAX_IMAGES = 200_000  # a folder's images are held in memory, 1 KiB each at 32x32
# full scale of each Pillow mode we read: 16-bit greys ("I;16*", or "I" as Pillow also reads
# them) span 0..65535, everything else is converted to 8-bit grey first
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def read_grey(path) -> xp.ndarray:
    """Grey levels in [0, 1] (float32, shape (H, W)) of an image file of at most
    :data:`MAX_PIXELS` pixels; DataError naming the file if it cannot be read."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError("reading images needs Pillow: pip install pillow") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise DataError(
                        f"{path}: is {width}x{height} pixels, more than the {MAX_PIXELS:,} "
                        "read here; scale it down first"
                    )
                if image.mode in SIXTEEN_BIT_MODES:
                    return xp.asarray(image, dtype=xp.float32) / 65535.0
                if image.mode == "F":
                    raise DataError(
                        f"{path}: a floating-point image has no agreed grey scale; save it as "
                        "an 8- or 16-bit PNG, or as .npy"
                    )
                return xp.asarray(image.convert("L"), dtype=xp.float32) / 255.0
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def resized(grey, width: int, height: int) -> xp.ndarray:
    """``grey`` resized by Pillow: area averages when shrinking (what a scanner's blocks count),
    bilinear when growing."""
    from PIL import Image

    image = Image.fromarray(xp.asarray(grey, dtype=xp.float32), mode="F")
    shrinking = width <= image.width and height <= image.height
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return xp.array(image.resize((width, height), resample), dtype=xp.float32)


@dataclass
class ImageFolder:
    """The images of a folder of class subfolders, resized to one size.

    ``images``: uint8 grey levels (N, H, W); ``labels``: class indices (N,); ``classes``: the
    subfolders' names, sorted (index i is ``classes[i]``); ``skipped``: ``(file, why)`` for each
    file that was not a readable image.
    """

    images: xp.ndarray
    labels: xp.ndarray
    classes: list
    skipped: list = field(default_factory=list)


def read_image_folder(root, size: tuple[int, int]) -> ImageFolder:
    """Every image under ``root/CLASS/`` (subfolders of a class included), as grey, resized to
    ``size`` (H, W); DataError if there are fewer than two classes with images."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    images, labels, skipped, empty = [], [], [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.is_file())
        before = len(images)
        for path in files:
            if path.name.startswith("."):  # .DS_Store and the like: not pictures
                continue
            if len(images) >= MAX_IMAGES:
                raise DataError(f"{root}: more than {MAX_IMAGES:,} images; use a part of them")
            try:
                grey = read_grey(path)
            except DataError as exc:
                skipped.append((path, str(exc).removeprefix(f"{path}: ")))
                continue
            images.append((resized(grey, size[1], size[0]) * 255).round().astype(xp.uint8))
            labels.append(index)
        if len(images) == before:
            empty.append(name)
    found = [c for c in classes if c not in empty]
    if len(found) < 2:
        raise DataError(
            f"{root}: needs one subfolder of images per class, at least two; found "
            f"{len(found)} with images ({', '.join(found) or 'none'})"
            + (f" and {len(skipped)} unreadable file(s)" if skipped else "")
        )
    if empty:
        raise DataError(f"{root}: the class folder(s) {', '.join(empty)} hold no readable image")
    return ImageFolder(xp.stack(images), xp.asarray(labels, dtype=xp.int64), classes, skipped)
