"""Scaled dot-product attention fused in one op: the scores, their softmax and the weighted sum of
the values, with the backward of all three in one place (the attention weights P are the only
intermediate kept, instead of the scores, the softmax and the scaled copy a chain of ops saves).
"""

from __future__ import annotations

from ..backend import ignore_float_errors, xp
from ..function import Function


class ScaledDotProductAttention(Function):
    """z = P' v,  P = softmax(s q k^T + m) over the keys,  P' = P * keep (dropout, if any).
    dv = P'^T dz,  dP = (dz v^T) * keep,  dS = P (dP - sum_keys(dP P)),
    dq = s dS k,  dk = s dS^T q,  dm = dS.

    ``q`` is (..., L, E), ``k`` (..., S, E), ``v`` (..., S, Ev); ``mask`` an additive mask that
    broadcasts to (..., L, S) (0 or -inf for a boolean one; None for none); ``keep`` the dropout
    multiplier (0 or 1/(1-p)) of P's shape, or None. A query whose keys are all masked gets
    weights 0 (output 0, gradient 0), as PyTorch's ``scaled_dot_product_attention``.
    """

    def forward(self, q, k, v, mask=None, scale=1.0, keep=None):
        scores = (q * q.dtype.type(scale)) @ xp.swapaxes(k, -1, -2)
        if mask is not None:
            scores = scores + mask
        weights = _softmax_or_zero(scores)
        dropped = weights if keep is None else weights * keep
        self.save(q, k, v, weights, keep, scale)
        return dropped @ v

    def backward(self, grad):
        q, k, v, weights, keep, scale = self.saved
        dropped = weights if keep is None else weights * keep
        grad_v = xp.swapaxes(dropped, -1, -2) @ grad
        grad_weights = grad @ xp.swapaxes(v, -1, -2)
        if keep is not None:
            grad_weights *= keep
        grad_scores = weights * (grad_weights - (grad_weights * weights).sum(-1, keepdims=True))
        scale = q.dtype.type(scale)
        grad_q = (grad_scores @ k) * scale
        grad_k = (xp.swapaxes(grad_scores, -1, -2) @ q) * scale
        return grad_q, grad_k, grad_v, grad_scores


def _softmax_or_zero(scores):
    """softmax over the last axis, shifted by the row's max; a row of -inf gives zeros (not nan)."""
    shift = scores.max(axis=-1, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0)
    with ignore_float_errors(invalid="ignore"):
        e = xp.exp(scores - shift)
    total = e.sum(axis=-1, keepdims=True)
    return e / xp.where(total > 0, total, 1)
