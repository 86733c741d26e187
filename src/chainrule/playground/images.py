"""The playground's image mode: its data sets, its setup, and the user's own uploaded classes.

* ``digits``: scikit-learn's 1,797 8x8 digits (levels 0..16 scaled to [0, 1]), split into
  training and test images each class in proportion (:func:`~chainrule.data.train_val_split`,
  seed 0), as the points are.
* ``mnist``: the MNIST files found in ``--data-dir``, else the download cache, else the
  1,000-image subset the package ships (never downloaded from the page); the first ``n``
  training and ``n // 5`` test images.
* ``upload``: a few images per class sent by the page (each checked and capped, a bad one named),
  resized to 16x16 grey levels.

"Is it X or not" (``positive``) turns any of them into two classes: X and everything else.
Every image reaches the network as (1, H, W) grey levels in [0, 1], light ink on black for the
digit sets, so that a picture drawn on the page is prepared as ``chainrule predict`` prepares it
(:func:`~chainrule.runs.drawings.to_training_image`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import io
from dataclasses import dataclass, field
from pathlib import Path

from .. import data, models
from ..backend import xp
from ..data.images import read_grey
from ..files import DataError
from ..runs.drawings import to_training_image
from .points import MAX_CLASSES, PlaygroundError
from .settings import (
    OPTIMIZERS,
    OptimizerChoice,
    checked_choice,
    checked_number,
    given_settings,
    shown_value,
)

MAX_HIDDEN = 3
MAX_IMAGE_NEURONS = 128
MAX_CONV_LAYERS = 3
MAX_CHANNELS = 16
MAX_MNIST = 10_000  # training images of MNIST a run takes (and a fifth as many test images)
UPLOAD_SIZE = (16, 16)  # uploaded pictures are resized to this many pixels (height, width)
MAX_UPLOAD_IMAGES = 120  # all classes together
MAX_UPLOAD_IMAGE_BYTES = 256 << 10
MAX_UPLOAD_PIXELS = 1024 * 1024  # of one uploaded (or drawn) picture, checked before decoding
ADAM_LR = 0.01  # the default optimizer's default learning rate here: 95% on the digits in seconds
IMAGE_DATA_SETS = {"digits": "8x8 digits", "mnist": "MNIST", "upload": "your images"}
NETWORKS = {"mlp": "MLP (dense layers)", "cnn": "CNN (convolutions, then dense layers)"}
IMAGE_RANGES = {
    "n": ("MNIST training images", 100, MAX_MNIST, False, True),
    "batch": ("batch size", 1, 1000, False, True),
}


@dataclass
class ImageSetup(OptimizerChoice):
    """The settings of one image run; :meth:`from_dict` checks the page's JSON."""

    mode: str = "images"
    dataset: str = "digits"
    positive: int | None = None  # "is it X or not": the class X (None: every class)
    n: int = 1000
    seed: int = 0
    network: str = "mlp"
    hidden: list = field(default_factory=lambda: [32])
    channels: list = field(default_factory=lambda: [6, 12])
    activation: str = "relu"
    optimizer: str = "adam"
    lr: float | None = ADAM_LR
    batch: int = 32

    @classmethod
    def from_dict(cls, values: dict, upload: Uploaded | None = None) -> ImageSetup:
        """A checked setup; raises :class:`PlaygroundError` naming the first bad setting."""
        given = given_settings(cls, values)
        setup = cls()
        setup.dataset = checked_choice(
            "dataset", given.get("dataset", setup.dataset), IMAGE_DATA_SETS
        )
        setup.network = checked_choice("network", given.get("network", setup.network), NETWORKS)
        setup.activation = checked_choice(
            "activation", given.get("activation", setup.activation), models.ACTIVATIONS
        )
        setup.optimizer = checked_choice(
            "optimizer", given.get("optimizer", setup.optimizer), OPTIMIZERS
        )
        for name in ("seed", "lr"):
            if name in given:
                setattr(setup, name, checked_number(name, given[name]))
        for name, (label, low, high, _, _) in IMAGE_RANGES.items():
            value = given.get(name, getattr(setup, name))
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise PlaygroundError(
                    f"{label} ({name}) must be a whole number from {low} to {high}, "
                    f"got {shown_value(value)}"
                )
            setattr(setup, name, value)
        setup.optimizer_settings(given)
        if "lr" not in given:  # Adam's usual 0.001 takes many epochs on the 8x8 digits
            setup.lr = ADAM_LR if setup.optimizer == "adam" else OPTIMIZERS[setup.optimizer][1]
        setup.hidden = _sizes(
            "dense layer",
            given.get("hidden", setup.hidden),
            MAX_HIDDEN,
            MAX_IMAGE_NEURONS,
            "neurons",
        )
        setup.channels = _sizes(
            "convolution",
            given.get("channels", setup.channels),
            MAX_CONV_LAYERS,
            MAX_CHANNELS,
            "channels",
        )
        if setup.network == "cnn" and not setup.channels:
            raise PlaygroundError("a CNN needs at least one convolution layer")
        if "positive" in given:
            setup.positive = _positive(given["positive"], setup.dataset, upload)
        if setup.dataset == "upload" and upload is None:
            raise PlaygroundError("your images: upload a few images of each class first")
        return setup


def _sizes(label: str, sizes, most: int, largest: int, unit: str) -> list:
    if not isinstance(sizes, list) or len(sizes) > most:
        raise PlaygroundError(f"{label}s: a list of at most {most}, got {shown_value(sizes)}")
    for i, size in enumerate(sizes):
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= largest:
            raise PlaygroundError(
                f"{label} {i + 1}: 1 to {largest} {unit}, got {shown_value(size)}"
            )
    return sizes


def _positive(value, dataset: str, upload) -> int:
    classes = len(upload.classes) if dataset == "upload" and upload else 10
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < classes:
        raise PlaygroundError(
            f"is it X or not (positive): X must be a class from 0 to {classes - 1}, "
            f"got {shown_value(value)}"
        )
    return value


# -- the data --------------------------------------------------------------------------------


@dataclass
class ImageData:
    """Training and test images (N, 1, H, W) in [0, 1] with their labels (int64), the class
    names, and how a drawing is prepared for them (``prepared_as``, a data set of
    :data:`~chainrule.runs.drawings.DRAWN_SETS` or None: resized)."""

    x_train: object
    y_train: object
    x_test: object
    y_test: object
    classes: list
    prepared_as: str | None
    source: str

    @property
    def shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


@functools.lru_cache(maxsize=1)
def _digits():
    images, labels = data.load_digits()
    images = (images / 16.0).astype(xp.float32)[:, None]
    return data.train_val_split(images, labels, val_fraction=0.2, seed=0, stratify=labels)


def mnist_folder(data_dir: str | None) -> Path | None:
    """Where MNIST's files are for the page: ``--data-dir``, else the download cache, else the
    1,000-image subset the package ships (the page never downloads); None when ``--data-dir``
    names a folder without them."""
    places = [Path(data_dir)] if data_dir else [data.cache_dir() / "mnist", data.MNIST_SUBSET]
    for folder in places:
        if (folder / "train-images-idx3-ubyte.gz").exists() or (
            folder / "train-images-idx3-ubyte"
        ).exists():
            return folder
    return None


@functools.lru_cache(maxsize=2)
def _mnist(folder: Path):
    (x_train, y_train), (x_test, y_test) = data.load_mnist(folder)
    scale = xp.float32(1 / 255)
    return (
        (x_train[:MAX_MNIST, None] * scale, y_train[:MAX_MNIST].astype(xp.int64)),
        (x_test[: MAX_MNIST // 5, None] * scale, y_test[: MAX_MNIST // 5].astype(xp.int64)),
    )


def build_images(setup: ImageSetup, upload: Uploaded | None, data_dir: str | None) -> ImageData:
    """The images of a setup (raising :class:`PlaygroundError` when they cannot be had)."""
    if setup.dataset == "digits":
        (x_train, y_train), (x_test, y_test) = _digits()
        found = ImageData(
            x_train,
            y_train,
            x_test,
            y_test,
            [str(k) for k in range(10)],
            "digits",
            "cr.data.load_digits()",
        )
    elif setup.dataset == "mnist":
        folder = mnist_folder(data_dir)
        if folder is None:
            raise PlaygroundError(
                "MNIST: its files are neither in --data-dir nor in the download cache; start "
                "the playground with --data-dir FOLDER (or run chainrule train mnist --download)"
            )
        try:
            (x_train, y_train), (x_test, y_test) = _mnist(folder)
        except (DataError, OSError) as exc:
            raise PlaygroundError(f"MNIST: {exc}") from None
        n = setup.n
        found = ImageData(
            x_train[:n],
            y_train[:n],
            x_test[: max(n // 5, 20)],
            y_test[: max(n // 5, 20)],
            [str(k) for k in range(10)],
            "mnist",
            f"cr.data.load_mnist({str(folder)!r})",
        )
    else:
        found = upload.split()
    if setup.positive is not None:
        found = _is_it(found, setup.positive)
    return found


def _is_it(found: ImageData, positive: int) -> ImageData:
    """Two classes: "not X" (0) and "X" (1)."""
    name = found.classes[positive]
    return dataclasses.replace(
        found,
        y_train=(found.y_train == positive).astype(xp.int64),
        y_test=(found.y_test == positive).astype(xp.int64),
        classes=[f"not {name}", name],
    )


# -- the user's own images -------------------------------------------------------------------


@dataclass
class Uploaded:
    """The user's images (N, 1, 16, 16) and labels, the class names in the order given."""

    images: object
    labels: object
    classes: list

    def split(self) -> ImageData:
        """A quarter of each class for testing (at least one image), as the other sets."""
        (x_train, y_train), (x_test, y_test) = data.train_val_split(
            self.images, self.labels, val_fraction=0.25, seed=0, stratify=self.labels
        )
        return ImageData(x_train, y_train, x_test, y_test, list(self.classes), None, "upload")

    def summary(self) -> dict:
        counts = xp.bincount(self.labels, minlength=len(self.classes)).tolist()
        return {"classes": list(self.classes), "counts": counts, "size": list(UPLOAD_SIZE)}


def decode_picture(name: str, text) -> xp.ndarray:
    """Grey levels in [0, 1] of a picture sent as base64 text (a PNG, JPEG... file, or a
    ``data:`` URL), at most :data:`MAX_UPLOAD_IMAGE_BYTES` and :data:`MAX_UPLOAD_PIXELS`."""
    if not isinstance(text, str):
        raise PlaygroundError(f"{name}: send the picture as base64 text")
    text = text.split(",", 1)[1] if text.startswith("data:") else text
    if len(text) > MAX_UPLOAD_IMAGE_BYTES * 4 // 3 + 4:
        raise PlaygroundError(
            f"{name}: more than {MAX_UPLOAD_IMAGE_BYTES >> 10} KiB; the playground takes "
            "smaller pictures"
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PlaygroundError(f"{name}: not base64 text") from None
    _check_pixels(name, raw)
    try:
        return read_grey(_Named(raw, name))
    except DataError as exc:
        raise PlaygroundError(str(exc)) from None


def _check_pixels(name: str, raw: bytes) -> None:
    """Refuse a picture of too many pixels from its header, before a pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(_Named(raw, name)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PlaygroundError(f"{name}: not a readable image ({exc})") from None
    if width * height > MAX_UPLOAD_PIXELS:
        raise PlaygroundError(
            f"{name}: {width}x{height} pixels; the playground takes pictures of at most "
            f"{MAX_UPLOAD_PIXELS:,} pixels"
        )


class _Named(io.BytesIO):
    """Bytes in memory that messages about them name as the file they came from."""

    def __init__(self, raw: bytes, name: str):
        super().__init__(raw)
        self.shown = name

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:  # Pillow's messages show the file as repr(file)
        return repr(self.shown)


def read_uploaded_images(files) -> Uploaded:
    """The user's classes from ``[{"class": NAME, "name": FILE, "data": BASE64}, ...]``: at most
    :data:`MAX_UPLOAD_IMAGES` pictures in 2 to ``MAX_CLASSES`` classes, at least 2 a class."""
    if not isinstance(files, list) or not files:
        raise PlaygroundError('images: send [{"class": ..., "name": ..., "data": ...}, ...]')
    if len(files) > MAX_UPLOAD_IMAGES:
        raise PlaygroundError(
            f"images: {len(files)} pictures; the playground takes at most {MAX_UPLOAD_IMAGES}"
        )
    classes, images, labels = [], [], []
    for i, entry in enumerate(files):
        if not isinstance(entry, dict):
            raise PlaygroundError(f"image {i + 1}: send an object with class, name and data")
        name = Path(str(entry.get("name") or f"image {i + 1}")).name[:100]
        label = str(entry.get("class") or "").strip()[:40]
        if not label:
            raise PlaygroundError(f"{name}: no class given")
        if label not in classes:
            if len(classes) == MAX_CLASSES:
                raise PlaygroundError(f"{name}: more than {MAX_CLASSES} classes")
            classes.append(label)
        grey = decode_picture(name, entry.get("data"))
        images.append(to_training_image(grey, UPLOAD_SIZE, None).pixels)
        labels.append(classes.index(label))
    counts = xp.bincount(xp.asarray(labels), minlength=len(classes))
    if len(classes) < 2 or counts.min() < 2:
        raise PlaygroundError(
            "images: give at least 2 classes of at least 2 pictures each, got "
            + ", ".join(f"{c}: {n}" for c, n in zip(classes, counts.tolist()))
        )
    return Uploaded(
        xp.stack(images).astype(xp.float32)[:, None], xp.asarray(labels, xp.int64), classes
    )


def image_choices(data_dir: str | None) -> dict:
    """What the image mode's menus offer, and whether MNIST is there to be had."""
    return {
        "datasets": IMAGE_DATA_SETS,
        "mnist": mnist_folder(data_dir) is not None,
        "networks": NETWORKS,
        "activations": list(models.ACTIVATIONS),
        "limits": {
            "hidden": MAX_HIDDEN,
            "neurons": MAX_IMAGE_NEURONS,
            "conv_layers": MAX_CONV_LAYERS,
            "channels": MAX_CHANNELS,
            "upload_images": MAX_UPLOAD_IMAGES,
            "mnist": MAX_MNIST,
        },
        "defaults": ImageSetup().to_dict(),
    }
