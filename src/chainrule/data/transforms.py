"""Turning raw data into what a network trains on: scaling, standardising, targets, splits."""

from __future__ import annotations

from dataclasses import dataclass

from ..backend import new_rng, xp
from ..files import DataError


def scale(images, maximum: float | None = None):
    """Pixels to float32 in [0, 1]: divide by ``maximum`` (255 for uint8 images by default)."""
    images = xp.asarray(images)
    if maximum is None:
        maximum = 255.0 if images.dtype == xp.uint8 else float(images.max() or 1.0)
    return (images / xp.float32(maximum)).astype(xp.float32, copy=False)


@dataclass
class Standardizer:
    """x -> (x - mean) / std, with mean and std measured on the training set only.

    ``per_feature=False`` (the default) uses one mean and std for all pixels, as is usual for
    images; ``True`` standardises each feature separately.
    """

    mean: object = None
    std: object = None

    @classmethod
    def fit(cls, x, per_feature: bool = False) -> Standardizer:
        x = xp.asarray(x)
        if per_feature:
            mean, std = x.mean(axis=0, dtype=xp.float64), x.std(axis=0, dtype=xp.float64)
            std = xp.where(std > 0, std, 1.0)
        else:
            mean, std = _mean_std(x)
        return cls(xp.asarray(mean, dtype=xp.float32), xp.asarray(std, dtype=xp.float32))

    def __call__(self, x):
        return ((xp.asarray(x, dtype=xp.float32) - self.mean) / self.std).astype(xp.float32)

    def to_dict(self) -> dict:
        return {"mean": xp.asarray(self.mean).tolist(), "std": xp.asarray(self.std).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Standardizer:
        """The standardizer saved by :meth:`to_dict`; refuses a std that is zero, negative or not
        finite, or a mean that is not finite (they would turn every input into NaN or Inf)."""
        try:
            mean = xp.asarray(d["mean"], dtype=xp.float32)
            std = xp.asarray(d["std"], dtype=xp.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"standardisation: needs numbers 'mean' and 'std' ({exc})") from None
        if not (xp.all(xp.isfinite(mean)) and xp.all(xp.isfinite(std)) and xp.all(std > 0)):
            raise DataError(
                "standardisation: 'mean' must be finite and 'std' finite and positive, got "
                f"mean {d['mean']!r:.60}, std {d['std']!r:.60}"
            )
        return cls(mean, std)


def _mean_std(x) -> tuple[float, float]:
    """Mean and standard deviation of all values, in float64, a block of rows at a time (so a
    large data set is never copied whole)."""
    rows = x.reshape(len(x), -1)
    block = max(1, (1 << 22) // max(rows.shape[1], 1))
    total = total_sq = 0.0
    for start in range(0, len(rows), block):
        part = rows[start : start + block].astype(xp.float64)
        total += float(part.sum())
        total_sq += float((part * part).sum())
    mean = total / x.size
    return mean, (max(total_sq / x.size - mean * mean, 0.0) ** 0.5) or 1.0


def check_finite(array, what: str) -> None:
    """Raise DataError naming ``what`` if ``array`` holds NaN or infinity.

    Float32 values summed in float64 cannot overflow, so one sum answers for all of them; only
    when it is not finite do we look for the first bad value to name it.
    """
    array = xp.asarray(array)
    if array.dtype.kind not in "fc" or xp.isfinite(array.sum(dtype=xp.float64)):
        return
    bad = ~xp.isfinite(array)
    if not bad.any():  # float64 values whose sum overflowed: all finite after all
        return
    first = tuple(int(i) for i in xp.argwhere(bad)[0])
    raise DataError(
        f"{what}: {int(bad.sum()):,} NaN/Inf value(s), the first at index {first} "
        f"(value {array[first]}); clean the data first"
    )


def one_hot(labels, num_classes: int | None = None):
    """Integer labels (N,) -> float32 rows with a single 1 (N, num_classes)."""
    labels = xp.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot needs integer labels, got {labels.dtype}")
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must be in 0..{num_classes - 1}")
    return xp.eye(num_classes, dtype=xp.float32)[labels]


def one_vs_rest(labels, positive):
    """ "Is it a ``positive``?": labels -> float32 1.0 where label == positive, else 0.0."""
    return (xp.asarray(labels) == positive).astype(xp.float32)


def train_val_split(*arrays, val_fraction: float = 0.1, seed: int = 0, stratify=None):
    """Split arrays that share their first axis into a training and a validation part.

    Returns ``(train_arrays, val_arrays)``. With ``stratify`` (labels), each class is split in the
    same proportion.

    Raises:
        DataError: one of the parts would be empty (too few examples for ``val_fraction``).
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n = len(arrays[0])
    rng = new_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
        n_val = max(1, int(round(n * val_fraction)))
        val_idx, train_idx = order[:n_val], order[n_val:]
    else:
        stratify = xp.asarray(stratify)
        val_parts, train_parts = [], []
        for cls in xp.unique(stratify):
            members = rng.permutation(xp.flatnonzero(stratify == cls))
            n_val = int(round(len(members) * val_fraction))
            val_parts.append(members[:n_val])
            train_parts.append(members[n_val:])
        val_idx = rng.permutation(xp.concatenate(val_parts))
        train_idx = rng.permutation(xp.concatenate(train_parts))
    if not (len(train_idx) and len(val_idx)):  # an empty part would fail later, far from here
        raise DataError(
            f"val_fraction {val_fraction} of {n} examples leaves {len(train_idx)} for training "
            f"and {len(val_idx)} for validation; each part needs at least one example"
        )
    return tuple(a[train_idx] for a in arrays), tuple(a[val_idx] for a in arrays)
