"""Fused loss ops: each returns the per-example loss, with a gradient that is stable by design."""

from __future__ import annotations

from ..backend import ignore_float_errors, xp
from ..function import Function
from ..sums import last_axes_sums
from ..threads import by_rows
from .activations import log_softmax_into, stable_sigmoid


class SoftmaxCrossEntropy(Function):
    """z = -sum_k q_k log softmax(x)_k.   dz/dx = softmax(x) - q.

    Cross-entropy of softmax(logits) against target probabilities q, fused with the softmax:
    loss_n = -sum_c q_nc log softmax(x_n)_c.    dloss_n/dx_n = softmax(x_n) - q_n.

    ``target`` is either class indices (N,) or probabilities (N, C); ``label_smoothing`` e mixes
    q with the uniform distribution: q = (1 - e) q + e / C. Fusing avoids log(0) and gives the
    well-known, numerically stable gradient softmax - target.
    """

    def forward(self, logits, target, label_smoothing=0.0):
        log_probs = xp.empty_like(logits)
        by_rows(log_softmax_into, logits, log_probs, None, axis=1)
        n, classes = logits.shape
        if target.ndim == 1:  # class indices
            picked = log_probs[xp.arange(n), target]
            loss = -(1 - label_smoothing) * picked
            if label_smoothing:
                loss -= label_smoothing / classes * last_axes_sums(log_probs)[:, 0]
        else:
            q = (
                target
                if not label_smoothing
                else (1 - label_smoothing) * target + label_smoothing / classes
            )
            loss = -last_axes_sums(q * log_probs)[:, 0]
        self.save(log_probs, target, label_smoothing)
        return loss

    def backward(self, grad):
        log_probs, target, smoothing = self.saved
        grad_logits = xp.exp(log_probs)  # softmax
        n, classes = grad_logits.shape
        if target.ndim == 1:
            grad_logits[xp.arange(n), target] -= 1 - smoothing
            if smoothing:
                grad_logits -= smoothing / classes
        else:
            grad_logits -= (
                target if not smoothing else (1 - smoothing) * target + smoothing / classes
            )
        grad_logits *= grad[:, None]
        return grad_logits, None


class BinaryCrossEntropy(Function):
    """loss = -(y log p + (1 - y) log(1 - p)), each log clamped at -100 as in PyTorch.
    dloss/dp = (p - y) / (p (1 - p)), with the denominator kept >= 1e-12.
    """

    def forward(self, p, y):
        self.save(p, y)
        with ignore_float_errors(divide="ignore"):
            log_p = xp.maximum(xp.log(p), -100)
            log_not_p = xp.maximum(xp.log1p(-p), -100)
        return -(y * log_p + (1 - y) * log_not_p)

    def backward(self, grad):
        p, y = self.saved
        return grad * (p - y) / xp.maximum(p * (1 - p), 1e-12), None


class BinaryCrossEntropyWithLogits(Function):
    """z = BCE(sigmoid(x), y).   dz/dx = sigmoid(x) - y.

    BCE of sigmoid(x) against y, fused with the sigmoid and computed from the logit x without
    overflow: loss = max(x, 0) - x y + log(1 + e^-|x|).    dloss/dx = sigmoid(x) - y.
    """

    def forward(self, x, y):
        self.save(x, y)
        return xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, grad):
        x, y = self.saved
        return grad * (stable_sigmoid(x) - y), None
