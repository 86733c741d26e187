"""Losses: how far the predictions are from the truth.

Each loss has a per-example value (``reduction='none'``) and a cost over the batch, their mean
(``'mean'``, the default) or sum (``'sum'``). Functional forms (``mse_loss``) and modules
(``MSELoss``) are both here; the modules only hold the options.
"""

from __future__ import annotations

from .. import api as ops
from ..backend import xp
from ..ops import losses as fused
from ..tensor import Tensor, _raw
from .module import Module

REDUCTIONS = ("mean", "sum", "none")


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """Per-example losses -> the cost over the batch (mean or sum), or unchanged for 'none'."""
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    return loss


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_same_shape(name: str, input, target) -> None:
    if tuple(input.shape) != tuple(_raw(target).shape):
        raise ValueError(
            f"{name}: input of shape {tuple(input.shape)} and target of shape "
            f"{tuple(_raw(target).shape)} must have the same shape"
        )


def _float_target(name: str, input, target):
    """The target as a constant array of the input's float dtype."""
    target = xp.asarray(_raw(target))
    if target.dtype.kind not in "fiub":
        raise TypeError(f"{name}: target must be numeric, got dtype {target.dtype}")
    return target.astype(input.dtype, copy=False)


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: (input - target)^2 per element."""
    _check_reduction("mse_loss", reduction)
    _check_same_shape("mse_loss", input, target)
    diff = input - _keep_tensor(input, target)
    return reduce(diff * diff, reduction)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error: |input - target| per element."""
    _check_reduction("l1_loss", reduction)
    _check_same_shape("l1_loss", input, target)
    return reduce(ops.abs(input - _keep_tensor(input, target)), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), with d = input - target."""
    _check_reduction("huber_loss", reduction)
    _check_same_shape("huber_loss", input, target)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    d = input - _keep_tensor(input, target)
    small = xp.abs(d._data) < delta
    loss = ops.where(small, 0.5 * d * d, delta * (ops.abs(d) - 0.5 * delta))
    return reduce(loss, reduction)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, with d = input - target, as
    PyTorch's: Huber's loss with delta = beta, divided by beta (the L1 loss for beta = 0)."""
    _check_reduction("smooth_l1_loss", reduction)
    _check_same_shape("smooth_l1_loss", input, target)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be a number >= 0, got {beta!r}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    return huber_loss(input, target, reduction, delta=beta) / beta


def _keep_tensor(input, target):
    """Targets that are tensors stay tensors (they may be differentiated); others become arrays."""
    return target if isinstance(target, Tensor) else _float_target("loss", input, target)


def _class_labels(name: str, logits, target):
    """Check integer labels (N,) against logits (N, C); returns the label array."""
    labels = xp.asarray(_raw(target))
    n, classes = logits.shape
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: class labels must be integers (got dtype {labels.dtype}); pass labels of "
            f"shape ({n},) with dtype int64, or class probabilities of shape ({n}, {classes})"
        )
    if labels.shape != (n,):
        raise ValueError(
            f"{name}: labels of shape {labels.shape} do not fit logits of shape {(n, classes)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise ValueError(
            f"{name}: label {bad} is out of range for {classes} classes (0..{classes - 1})"
        )
    return labels


def _kept_labels(name: str, logits, target, ignore_index: int):
    """Class labels checked as :func:`_class_labels` does, those equal to ``ignore_index`` (which
    may be out of range, as PyTorch's -100) replaced by 0; and the mask of the labels kept, or
    None when none is ignored."""
    labels = xp.asarray(_raw(target))
    keep = labels != ignore_index
    if keep.all():
        return _class_labels(name, logits, labels), None
    return _class_labels(name, logits, xp.where(keep, labels, 0)), keep


def _reduce_kept(loss: Tensor, keep, reduction: str) -> Tensor:
    """:func:`reduce` where the examples outside ``keep`` count 0 and are not counted in the
    mean (PyTorch's ``ignore_index``; a mean over no example is nan, as PyTorch's)."""
    if keep is None:
        return reduce(loss, reduction)
    loss = loss * keep.astype(loss.dtype)
    if reduction == "mean":
        return ops.sum(loss) / loss.dtype.type(keep.sum())
    return reduce(loss, reduction)


def cross_entropy(
    input,
    target,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
) -> Tensor:
    """Cross-entropy from logits (N, C) against class labels (N,) or probabilities (N, C).

    Fused with log-softmax, so the gradient is the stable softmax - target. Labels equal to
    ``ignore_index`` add nothing to the loss and are not counted in the mean, as in PyTorch.
    """
    _check_reduction("cross_entropy", reduction)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, C), got {tuple(input.shape)}")
    raw_target = xp.asarray(_raw(target))
    if raw_target.ndim == 2:
        _check_same_shape("cross_entropy", input, raw_target)
        target_array = _float_target("cross_entropy", input, raw_target)
        keep = None
    else:
        target_array, keep = _kept_labels("cross_entropy", input, raw_target, ignore_index)
    loss = fused.SoftmaxCrossEntropy.apply(input, target_array, label_smoothing=label_smoothing)
    return _reduce_kept(loss, keep, reduction)


def nll_loss(input, target, reduction: str = "mean", ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood: -input[n, label_n] for log-probabilities (N, C); labels equal
    to ``ignore_index`` add nothing and are not counted in the mean, as in PyTorch."""
    _check_reduction("nll_loss", reduction)
    if input.ndim != 2:
        raise ValueError(
            f"nll_loss: log-probabilities must have shape (N, C), got {tuple(input.shape)}"
        )
    labels, keep = _kept_labels("nll_loss", input, target, ignore_index)
    return _reduce_kept(-input[xp.arange(len(labels)), labels], keep, reduction)


def binary_cross_entropy(input, target, reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1]."""
    _check_reduction("binary_cross_entropy", reduction)
    _check_same_shape("binary_cross_entropy", input, target)
    p = input._data
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(
            "binary_cross_entropy: input must be probabilities in [0, 1] (apply sigmoid first, "
            "or use binary_cross_entropy_with_logits)"
        )
    y = _float_target("binary_cross_entropy", input, target)
    return reduce(fused.BinaryCrossEntropy.apply(input, y), reduction)


def binary_cross_entropy_with_logits(input, target, reduction: str = "mean") -> Tensor:
    """BCE of sigmoid(input) against target, computed stably from the logits."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    y = _float_target("binary_cross_entropy_with_logits", input, target)
    return reduce(fused.BinaryCrossEntropyWithLogits.apply(input, y), reduction)


# -- modules -------------------------------------------------------------------------------------


class _Loss(Module):
    function = None

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        _check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def forward(self, input, target):
        return type(self).function(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error: mean of (input - target)^2."""

    function = staticmethod(mse_loss)


class L1Loss(_Loss):
    """Mean absolute error: mean of |input - target|."""

    function = staticmethod(l1_loss)


class HuberLoss(_Loss):
    """Squared error for small errors, absolute error beyond ``delta``."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(_Loss):
    """Squared error / beta for errors below ``beta``, absolute error beyond (see
    :func:`smooth_l1_loss`)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return smooth_l1_loss(input, target, self.reduction, self.beta)


class CrossEntropyLoss(_Loss):
    """Cross-entropy from logits, fused with log-softmax (see :func:`cross_entropy`)."""

    def __init__(
        self, reduction: str = "mean", label_smoothing: float = 0.0, ignore_index: int = -100
    ):
        super().__init__(reduction)
        self.label_smoothing, self.ignore_index = label_smoothing, ignore_index

    def forward(self, input, target):
        return cross_entropy(
            input, target, self.reduction, self.label_smoothing, ignore_index=self.ignore_index
        )


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (pair with LogSoftmax)."""

    def __init__(self, reduction: str = "mean", ignore_index: int = -100):
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return nll_loss(input, target, self.reduction, self.ignore_index)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities."""

    function = staticmethod(binary_cross_entropy)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits (sigmoid fused in, stable for large logits)."""

    function = staticmethod(binary_cross_entropy_with_logits)
