"""Metrics on predictions: accuracy, top-k accuracy, confusion matrix, per-class precision/recall
for classes; mean squared and absolute error and R^2 for numbers (regression).

They take plain arrays (or tensors): ``output`` is what the network produced (logits or
probabilities, or predicted values) and ``target`` the labels (or true values).
"""

from __future__ import annotations

from ..backend import add_at, ignore_float_errors, xp


def _array(x):
    return xp.asarray(getattr(x, "_data", x))


def predicted_classes(output, threshold: float = 0.0):
    """The predicted class: the most activated output neuron, or ``output > threshold`` for a
    single output (binary)."""
    output = _array(output)
    if output.ndim == 2 and output.shape[1] > 1:
        return output.argmax(axis=1)
    return (output.reshape(len(output)) > threshold).astype(xp.int64)


def true_classes(target):
    """Labels from integer labels, one-hot / probability rows, or 0/1 binary targets."""
    target = _array(target)
    if target.ndim == 2 and target.shape[1] > 1:
        return target.argmax(axis=1)
    return target.reshape(len(target)).round().astype(xp.int64)


def accuracy(output, target, threshold: float = 0.0) -> float:
    """Fraction of examples whose predicted class is the true one."""
    return float((predicted_classes(output, threshold) == true_classes(target)).mean())


def top_k_accuracy(output, target, k: int = 5) -> float:
    """Fraction of examples whose true class is among the ``k`` most activated outputs."""
    output = _array(output)
    top = xp.argpartition(-output, min(k, output.shape[1]) - 1, axis=1)[:, :k]
    return float((top == true_classes(target)[:, None]).any(axis=1).mean())


def confusion_matrix(predicted, actual, num_classes: int | None = None):
    """Counts ``C[i, j]``: examples of true class i predicted as j."""
    predicted, actual = _array(predicted).astype(xp.int64), _array(actual).astype(xp.int64)
    if num_classes is None:
        num_classes = int(max(predicted.max(initial=0), actual.max(initial=0))) + 1
    matrix = xp.zeros((num_classes, num_classes), dtype=xp.int64)
    add_at(matrix, (actual, predicted), 1)
    return matrix


def precision_recall(matrix) -> tuple:
    """Per-class precision (of the predictions of a class, how many were right) and recall (of
    the examples of a class, how many were found), from a confusion matrix."""
    matrix = _array(matrix).astype(xp.float64)
    hits = xp.diag(matrix)
    with ignore_float_errors(invalid="ignore", divide="ignore"):
        precision = xp.nan_to_num(hits / matrix.sum(axis=0))
        recall = xp.nan_to_num(hits / matrix.sum(axis=1))
    return precision, recall


def regression_metrics(predicted, actual) -> dict:
    """MSE, RMSE, MAE and R^2 of predicted values against the true ones (float64).

    ``mse = mean((p - y)^2)``, ``rmse = sqrt(mse)``, ``mae = mean(|p - y|)``,
    ``r2 = 1 - sum((p - y)^2) / sum((y - mean(y))^2)`` (1 is perfect, 0 is no better than
    always predicting the mean; None where every target is the same and R^2 has no meaning).
    """
    sums = RegressionSums()
    sums.update(predicted, actual)
    return sums.result()


class RegressionSums:
    """Running sums for :func:`regression_metrics` over batches: squared and absolute errors,
    and the targets' sum and sum of squares (for R^2's total variation), the targets shifted by
    the first batch's mean so that a large offset cannot swamp their spread.

    ``scale`` multiplies every error: the standard deviation the targets were divided by, so
    that MSE, RMSE and MAE come out in the targets' own units (R^2 has no units).
    """

    KEYS = ("squared", "absolute", "target", "target_squared", "count", "shift")

    def __init__(self, scale: float = 1.0):
        self.scale = scale
        self.squared = self.absolute = self.target = self.target_squared = self.shift = 0.0
        self.count = 0

    def update(self, predicted, actual) -> None:
        """Add one batch (the first one sets the shift)."""
        if self.count == 0:
            total, count = self.first_batch(actual)
            self.shift = total / max(count, 1)
        self.add(self.batch_sums(predicted, actual))

    @staticmethod
    def first_batch(actual) -> tuple:
        """(sum, count) of a first batch's targets, from which the shift is their mean."""
        actual = _array(actual).astype(xp.float64).ravel()
        return float(actual.sum()), len(actual)

    def batch_sums(self, predicted, actual) -> tuple:
        """One batch's sums: squared and absolute errors, shifted targets and their squares,
        count (sums from several processes add up)."""
        predicted = _array(predicted).astype(xp.float64).ravel()
        actual = _array(actual).astype(xp.float64).ravel()
        error = predicted - actual
        shifted = actual - self.shift
        return (
            float(error @ error),
            float(xp.abs(error).sum()),
            float(shifted.sum()),
            float(shifted @ shifted),
            len(actual),
        )

    def add(self, sums: tuple) -> None:
        squared, absolute, target, target_squared, count = sums
        self.squared += squared
        self.absolute += absolute
        self.target += target
        self.target_squared += target_squared
        self.count += int(count)

    def result(self) -> dict:
        n = max(self.count, 1)
        mse = self.squared / n * self.scale**2
        total = self.target_squared - self.target**2 / n  # sum((y - mean(y))^2)
        return {
            "mse": mse,
            "rmse": mse**0.5,
            "mae": self.absolute / n * self.scale,
            "r2": 1.0 - self.squared / total if total > 0 else None,  # all targets equal
        }

    def moments(self) -> list:
        """``[squared, absolute, count, mean, m2]``: this process's errors, and its targets' mean
        and sum of squared deviations from it, which :meth:`merge` combines over processes."""
        n = max(self.count, 1)
        mean = self.shift + self.target / n
        return [
            self.squared,
            self.absolute,
            self.count,
            mean,
            self.target_squared - self.target**2 / n,
        ]

    def merge(self, rows) -> None:
        """Become the sums over several processes, one row of :meth:`moments` each (Chan et
        al.'s pairwise update: ``m2 = sum_r m2_r + sum_r n_r (mean_r - mean)^2``)."""
        rows = xp.asarray(rows, dtype=xp.float64)
        counts, means = rows[:, 2], rows[:, 3]
        self.count = int(counts.sum())
        self.squared, self.absolute = float(rows[:, 0].sum()), float(rows[:, 1].sum())
        self.shift = float(counts @ means) / max(self.count, 1)
        self.target = 0.0
        self.target_squared = float(rows[:, 4].sum() + counts @ (means - self.shift) ** 2)

    def state_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.KEYS}

    def load_state_dict(self, state: dict) -> None:
        for key in self.KEYS:
            setattr(self, key, state[key])
