"""Real and generated data sets.

Real images: MNIST and Fashion-MNIST (IDX files from a folder you name, or downloaded into the
cache), scikit-learn's 8x8 digits, and scikit-image's "is it a face" subset of LFW. Generated 2-D
sets for teaching: spirals, moons, circles, xor, blobs, two Gaussians. Image loaders return uint8
or float arrays as stored; see :mod:`chainrule.data.transforms` to scale them.
"""

from __future__ import annotations

from pathlib import Path

from ..backend import new_rng, xp
from .download import cache_dir, download_file, sha256_of
from .idx import DataFileError, read_idx

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

SOURCES = {
    "mnist": {
        "mirrors": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "sha256": {
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        "bytes": {
            "train-images-idx3-ubyte.gz": 9_912_422,
            "train-labels-idx1-ubyte.gz": 28_881,
            "t10k-images-idx3-ubyte.gz": 1_648_877,
            "t10k-labels-idx1-ubyte.gz": 4_542,
        },
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "sha256": {
            "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
        },
        "bytes": {
            "train-images-idx3-ubyte.gz": 26_421_880,
            "train-labels-idx1-ubyte.gz": 29_515,
            "t10k-images-idx3-ubyte.gz": 4_422_102,
            "t10k-labels-idx1-ubyte.gz": 5_148,
        },
    },
}


MNIST_SUBSET = Path(__file__).parent / "mnist_subset"
"""A folder of MNIST's first 1,000 training and 200 test images, in MNIST's own files, shipped
with the package (204 KB; see its README): ``load_mnist(MNIST_SUBSET)`` needs no download."""


def load_mnist(root=None, download: bool = False, mirrors: list[str] | None = None):
    """MNIST handwritten digits: ``((x_train, y_train), (x_test, y_test))``, images uint8 (N, 28, 28).

    Args:
        root: folder holding the four IDX files (``.gz`` or raw). Default: the cache folder
            ``$CHAINRULE_DATA/mnist`` (or ``~/.cache/chainrule/mnist``).
        download: fetch missing files into ``root`` (checked by SHA-256) first.
        mirrors: base URLs to download from (default: the usual public mirrors).
    """
    return _load_idx_set("mnist", root, download, mirrors)


def load_fashion_mnist(root=None, download: bool = False, mirrors: list[str] | None = None):
    """Fashion-MNIST (Zalando's clothes, same format as MNIST); see :func:`load_mnist`."""
    return _load_idx_set("fashion-mnist", root, download, mirrors)


def _load_idx_set(name: str, root, download: bool, mirrors):
    folder = Path(root) if root is not None else cache_dir() / name
    source = SOURCES[name]
    if download:
        for file_name, sha in source["sha256"].items():
            if _find(folder, file_name.removesuffix(".gz")) is None:
                size = source.get("bytes", {}).get(file_name)  # caps what a mirror may send
                try:
                    download_file(file_name, sha, folder, mirrors or source["mirrors"], size=size)
                except DataFileError as exc:
                    raise DataFileError(
                        f"{exc}. Without the network: put the four {name} files "
                        f"({', '.join(source['sha256'])}) in a folder and pass --data-dir FOLDER "
                        "(Python: root=FOLDER)"
                    ) from None
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = _find(folder, stem)
        if path is None:
            raise FileNotFoundError(
                f"{name}: {stem}.gz (or {stem}) not found in {folder}. Put the four {name} IDX "
                f"files there, or pass download=True (CLI: --download) to fetch them."
            )
        if (root is None or download) and path.name in source["sha256"]:
            _verify_download(path, source["sha256"][path.name])
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataFileError(
                f"{name} in {folder}: {split} images {images.shape} and labels {labels.shape} "
                "do not match"
            )
        if 0 in images.shape:  # a header may declare 0 examples, or images of 0 pixels
            raise DataFileError(
                f"{name} in {folder}: {split} images of shape {images.shape} hold no data"
            )
        if labels.max() > 9:
            raise DataFileError(f"{name} in {folder}: {split} labels outside 0..9")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataFileError(
            f"{name} in {folder}: test images are {arrays['test_images'].shape[1:]}, training "
            f"images {arrays['train_images'].shape[1:]}; both must be the same size"
        )
    return (
        (arrays["train_images"], arrays["train_labels"]),
        (arrays["test_images"], arrays["test_labels"]),
    )


def _verify_download(path: Path, sha256: str) -> None:
    """A downloaded file is checked every time it is used, not only when it arrived."""
    if sha256_of(path) != sha256:
        raise DataFileError(
            f"{path}: not the file that was downloaded (SHA-256 mismatch: corrupt or replaced); "
            "delete it and run again with --download to fetch it afresh"
        )


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.exists():  # not is_file: read_idx names a FIFO or a folder for what it is
            return candidate
    return None


def load_digits():
    """scikit-learn's 1,797 handwritten digits: ``(images, labels)``, images float32 (N, 8, 8)
    with values 0..16."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return digits.images.astype(xp.float32), digits.target.astype(xp.int64)


def load_faces():
    """ "Is it a face?": scikit-image's LFW subset, 200 images 25x25 in [0, 1]; label 1 = face
    (the first 100), 0 = not a face. Needs ``pip install 'chainrule[faces]'``."""
    try:
        from skimage.data import lfw_subset
    except ImportError:
        raise ImportError(
            "the faces data set comes with scikit-image: pip install 'chainrule[faces]'"
        ) from None
    images = lfw_subset().astype(xp.float32)
    labels = xp.zeros(len(images), dtype=xp.int64)
    labels[:100] = 1
    return images, labels


# -- generated 2-D sets ----------------------------------------------------------------------------


def spirals(n: int = 500, classes: int = 2, noise: float = 0.2, turns: float = 1.5, seed: int = 0):
    """Interleaved spiral arms, one per class: ``(points (n, 2) float32, labels (n,))``."""
    rng = new_rng(seed)
    labels = xp.arange(n) % classes
    t = rng.uniform(0.05, 1.0, n)
    angle = 2 * xp.pi * turns * t + 2 * xp.pi * labels / classes
    points = xp.stack([t * xp.cos(angle), t * xp.sin(angle)], axis=1) * 2
    points += rng.normal(0, noise * 0.1, points.shape)
    return points.astype(xp.float32), labels.astype(xp.int64)


def xor(n: int = 400, noise: float = 0.1, seed: int = 0):
    """Points in the four quadrants; label 1 where x and y have opposite signs."""
    rng = new_rng(seed)
    points = rng.uniform(-1, 1, (n, 2))
    labels = (points[:, 0] * points[:, 1] < 0).astype(xp.int64)
    points += rng.normal(0, noise, points.shape)
    return points.astype(xp.float32), labels


def moons(n: int = 400, noise: float = 0.1, seed: int = 0):
    """Two interleaving half circles (scikit-learn's ``make_moons``)."""
    from sklearn.datasets import make_moons

    points, labels = make_moons(n, noise=noise, random_state=seed)
    return points.astype(xp.float32), labels.astype(xp.int64)


def circles(n: int = 400, noise: float = 0.05, factor: float = 0.5, seed: int = 0):
    """A small circle inside a large one (scikit-learn's ``make_circles``)."""
    from sklearn.datasets import make_circles

    points, labels = make_circles(n, noise=noise, factor=factor, random_state=seed)
    return points.astype(xp.float32), labels.astype(xp.int64)


def blobs(n: int = 400, classes: int = 3, spread: float = 1.0, seed: int = 0):
    """Gaussian clusters, one per class (scikit-learn's ``make_blobs``)."""
    from sklearn.datasets import make_blobs

    points, labels = make_blobs(n, centers=classes, cluster_std=spread, random_state=seed)
    return points.astype(xp.float32), labels.astype(xp.int64)


def two_gaussians(n: int = 400, spread: float = 1.0, distance: float = 2.0, seed: int = 0):
    """Two round Gaussian clouds (the TensorFlow playground's "Gaussian"): class 0 around
    ``(-distance, -distance)``, class 1 around ``(distance, distance)``, each coordinate with
    standard deviation ``spread``. Returns ``(points (n, 2) float32, labels (n,))``, the classes
    alternating."""
    _check_size("two_gaussians", n)
    rng = new_rng(seed)
    labels = xp.arange(n) % 2
    centres = xp.where(labels[:, None] == 1, distance, -distance)
    points = centres + rng.normal(0.0, spread, (n, 2))
    return points.astype(xp.float32), labels.astype(xp.int64)


# -- regression: numbers instead of classes ------------------------------------------------------


def line(
    n: int = 100,
    a: float = 2.0,
    b: float = 1.0,
    noise: float = 0.5,
    seed: int = 0,
    x_range: tuple[float, float] = (0.0, 4.0),
):
    """Points around a straight line, ``y = a x + b + noise``: ``(x (n, 1) float32, y (n,) float32)``.

    ``x`` is uniform over ``x_range``; the noise is Gaussian with standard deviation ``noise``.
    """
    _check_size("line", n)
    rng = new_rng(seed)
    x = rng.uniform(x_range[0], x_range[1], n)
    y = a * x + b + rng.normal(0.0, noise, n)
    return x[:, None].astype(xp.float32), y.astype(xp.float32)


def plane(n: int = 400, noise: float = 0.05, seed: int = 0):
    """A tilted plane over the square [-1, 1]^2 (the playground's "plane"):
    ``y = (x1 + x2) / 2 + noise``, in [-1, 1]. Returns ``(points (n, 2), y (n,))``, float32."""
    _check_size("plane", n)
    rng = new_rng(seed)
    points = rng.uniform(-1.0, 1.0, (n, 2))
    y = points.sum(axis=1) / 2 + rng.normal(0.0, noise, n)
    return points.astype(xp.float32), y.astype(xp.float32)


BUMP_CENTRES = [
    (-2 / 3, 0.42),
    (0.0, 0.42),
    (2 / 3, 0.42),
    (-2 / 3, -0.42),
    (0.0, -0.42),
    (2 / 3, -0.42),
]
BUMP_SIGNS = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]


def bumps(n: int = 400, noise: float = 0.05, width: float = 0.2, seed: int = 0):
    """Six Gaussian bumps over [-1, 1]^2, up and down in turn (the playground's "multi gaussian"):
    ``y = sum_k sign_k exp(-|p - c_k|^2 / (2 width^2)) + noise``. Returns ``(points (n, 2), y (n,))``.
    """
    _check_size("bumps", n)
    rng = new_rng(seed)
    points = rng.uniform(-1.0, 1.0, (n, 2))
    centres = xp.array(BUMP_CENTRES)
    squared = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
    y = (xp.array(BUMP_SIGNS) * xp.exp(-squared / (2 * width**2))).sum(axis=1)
    y += rng.normal(0.0, noise, n)
    return points.astype(xp.float32), y.astype(xp.float32)


def _check_size(name: str, n) -> None:
    if not isinstance(n, (int, xp.integer)) or n < 1:
        raise ValueError(f"{name}: n must be a positive number of points, got {n!r}")


DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def load_diabetes():
    """scikit-learn's diabetes set: 442 patients, 10 standardised measurements
    (``DIABETES_FEATURES``: age, sex, body mass index, blood pressure, six blood serum values) and
    a disease-progression score one year later (25..346).
    Returns ``(x (442, 10) float32, y (442,) float32)``."""
    from sklearn.datasets import load_diabetes as sklearn_diabetes

    x, y = sklearn_diabetes(return_X_y=True)
    return x.astype(xp.float32), y.astype(xp.float32)


CALIFORNIA = {
    # The archive scikit-learn's fetch_california_housing downloads (same address and checksum).
    # download_file asks each mirror for MIRROR/FILE; the '#' makes "/cal_housing.tgz" a URL
    # fragment, which is never sent, so the request goes to figshare's address as it is.
    "file": "cal_housing.tgz",
    "mirrors": ["https://ndownloader.figshare.com/files/5976036#"],
    "sha256": "aaa5c9a6afe2225cc2aed2723682ae403280c4a3695a2ddda4ffb5d8215ea681",
    "member": "CaliforniaHousing/cal_housing.data",
    "max_bytes": 16 << 20,  # the real table is 1.9 MB
}
CALIFORNIA_FEATURES = [
    "MedInc",
    "HouseAge",
    "AveRooms",
    "AveBedrms",
    "Population",
    "AveOccup",
    "Latitude",
    "Longitude",
]


def load_california(root=None, download: bool = False):
    """California housing (1990 census): 20,640 districts, 8 features (``CALIFORNIA_FEATURES``:
    median income, house age, rooms and bedrooms per household, population, occupants per
    household, latitude, longitude) and the median house value in units of $100,000.

    The same numbers as scikit-learn's ``fetch_california_housing``, from the same archive, but
    kept as the archive itself (scikit-learn caches a pickle, and loading a pickle can run code).

    Args:
        root: folder holding ``cal_housing.tgz``. Default: ``$CHAINRULE_DATA/california``
            (or ``~/.cache/chainrule/california``).
        download: fetch the archive (checked by SHA-256) into ``root`` first if it is missing.

    Returns:
        ``(x (20640, 8) float32, y (20640,) float32)``.
    """
    folder = Path(root) if root is not None else cache_dir() / "california"
    archive = folder / CALIFORNIA["file"]
    if not archive.is_file():
        if not download:
            raise FileNotFoundError(
                f"california: {archive} not found; pass download=True (CLI: --download) to fetch "
                f"it from {CALIFORNIA['mirrors'][0].rstrip('#')}"
            )
        try:
            download_file(CALIFORNIA["file"], CALIFORNIA["sha256"], folder, CALIFORNIA["mirrors"])
        except DataFileError as exc:
            reason = str(exc).splitlines()[-1].strip()
            raise DataFileError(
                f"california: could not download the housing data into {folder} (offline?): "
                f"{reason}. Without the network: put {CALIFORNIA['file']} in a folder and pass "
                "--data-dir FOLDER (Python: root=FOLDER)"
            ) from None
    table = _read_california_table(archive)
    # The archive's columns: longitude, latitude, age, rooms, bedrooms, population,
    # households, income, value. Rooms, bedrooms and people become per-household averages.
    households = table[:, 6]
    x = xp.stack(
        [
            table[:, 7],
            table[:, 2],
            table[:, 3] / households,
            table[:, 4] / households,
            table[:, 5],
            table[:, 5] / households,
            table[:, 1],
            table[:, 0],
        ],
        axis=1,
    )
    return x.astype(xp.float32), (table[:, 8] / 100_000.0).astype(xp.float32)


def _read_california_table(archive: Path):
    import tarfile

    member = CALIFORNIA["member"]
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            info = tar.getmember(member)
            if not info.isfile() or info.size > CALIFORNIA["max_bytes"]:
                raise DataFileError(f"california: {archive}: {member} is not a table of data")
            text = tar.extractfile(info).read().decode("ascii")
        table = xp.loadtxt(text.splitlines(), delimiter=",", ndmin=2)
    except (tarfile.TarError, KeyError, OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, DataFileError):
            raise
        raise DataFileError(
            f"california: {archive} is not the housing archive ({type(exc).__name__}: {exc}); "
            "delete it and download again"
        ) from None
    if table.shape[1] != 9 or not xp.isfinite(table).all() or (table[:, 6] <= 0).any():
        raise DataFileError(
            f"california: {archive}: expected 9 numeric columns with households > 0, "
            f"got a table of shape {table.shape}"
        )
    return table
