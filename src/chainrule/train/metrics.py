"""Metrics on predictions: accuracy, top-k accuracy, confusion matrix, per-class precision/recall.

They take plain arrays (or tensors): ``output`` is what the network produced (logits or
probabilities) and ``target`` the labels.
"""

from __future__ import annotations

from ..backend import add_at, ignore_float_errors, xp


def _array(x):
    return xp.asarray(getattr(x, "data", x))


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
