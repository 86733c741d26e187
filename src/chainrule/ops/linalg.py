"""Matrix products: the weighted sums at the heart of every layer."""

from __future__ import annotations

import math

from ..backend import xp
from ..function import Function
from ..sums import leading_axes_sums


def rows(a):
    """``a`` (..., k) as one matrix (-1, k): a single BLAS product instead of NumPy's loop of one
    small product per leading index (3.5x slower for a (35, 20, 200) @ (200, 10000) product)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1]) if a.ndim != 2 else a


class MatMul(Function):
    """z = a @ b (NumPy's rules: 1-D, 2-D and batched).   da = dz @ b^T,  db = a^T @ dz.

    A 1-D ``a`` acts as a row (1, k) and a 1-D ``b`` as a column (k, 1); the gradient formulas are
    applied to those matrices and the added axis removed again. Batch axes that were broadcast are
    summed by the engine.
    """

    def forward(self, a, b):
        self.save(a, b)
        if a.ndim > 2 and b.ndim == 2:  # a stack of rows times one matrix: one product
            return (rows(a) @ b).reshape(*a.shape[:-1], b.shape[1])
        return a @ b

    def backward(self, grad):
        a, b = self.saved
        if a.ndim > 2 and b.ndim == 2:  # as in forward: dA = dZ B^T and dB = A^T dZ, one each
            grad_a = (rows(grad) @ b.T).reshape(a.shape) if self.needs_grad[0] else None
            grad_b = rows(a).T @ rows(grad) if self.needs_grad[1] else None
            return grad_a, grad_b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1:
            grad = xp.expand_dims(grad, -2 if b.ndim > 1 else -1)
        if b.ndim == 1:
            grad = grad[..., None]
        grad_a = grad_b = None
        if self.needs_grad[0]:
            grad_a = grad @ xp.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                grad_a = grad_a.reshape(-1, a.shape[0]).sum(axis=0)
        if self.needs_grad[1]:
            grad_b = xp.swapaxes(a2, -1, -2) @ grad
            if b.ndim == 1:
                grad_b = grad_b.reshape(-1, b.shape[0]).sum(axis=0)
        return grad_a, grad_b


class Linear(Function):
    """z = x W^T + b.   dz/dx = W, dz/dW = x, dz/db = 1.

    The matrix product and the bias fused in one op (W is (out, in) as in PyTorch). As
    arrays: dx = dz @ W,  dW = dz^T @ x,  db = sum of dz over every axis but the last.
    """

    def forward(self, x, weight, bias=None):
        self.save(x, weight)
        z = rows(x) @ weight.T
        if bias is not None:
            z += bias
        return z.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, grad):
        x, weight = self.saved
        grad_2d = rows(grad)
        grad_x = (grad_2d @ weight).reshape(x.shape) if self.needs_grad[0] else None
        grad_w = grad_2d.T @ rows(x) if self.needs_grad[1] else None
        needs_b = len(self.needs_grad) > 2 and self.needs_grad[2]
        grad_b = leading_axes_sums(grad_2d, 1) if needs_b else None
        return grad_x, grad_w, grad_b


class Einsum(Function):
    """z = einsum(equation, a, b, ...): products of the operands' elements, summed over every
    index that is not in the output (``"ij,jk->ik"`` is a matrix product).
    dz/d(operand k) = einsum of dz with the other operands, back to operand k's indices.

    An index only operand k has (summed away alone) is broadcast back, and a repeated one (a diagonal,
    ``"ii"``) is written onto that diagonal; an axis of length 1 that was broadcast is summed.
    ``equation`` is explicit (``"ij,jk->ik"``, no ``...``; ``cr.einsum`` writes it so).
    """

    promotes = True

    def forward(self, *operands, equation=""):
        inputs, self.result_subscripts = equation.split("->")
        self.subscripts = inputs.split(",")
        self.save(*operands)
        return xp.einsum(equation, *operands, optimize=len(operands) > 1)

    def backward(self, grad):
        operands = self.saved
        return tuple(
            self._gradient(k, grad, operands) if self.needs_grad[k] else None
            for k in range(len(operands))
        )

    def _gradient(self, k: int, grad, operands):
        own = self.subscripts[k]
        others = [s for i, s in enumerate(self.subscripts) if i != k]
        letters = "".join(dict.fromkeys(own))  # each index once, in order
        shared = "".join(c for c in letters if c in set(self.result_subscripts).union(*others))
        alone = "".join(c for c in letters if c not in shared)
        terms = ",".join([self.result_subscripts, *others])
        partial = xp.einsum(
            f"{terms}->{shared}",
            grad,
            *(o for i, o in enumerate(operands) if i != k),
            optimize=len(operands) > 1,
        )
        partial = partial.reshape(partial.shape + (1,) * len(alone))  # broadcast over `alone`
        partial = partial.transpose([(shared + alone).index(c) for c in letters])
        grad_k = xp.zeros(operands[k].shape, dtype=grad.dtype)
        target = xp.einsum(f"{own}->{letters}", grad_k)  # a view: writing it writes grad_k
        broadcast = tuple(
            i for i, (n, m) in enumerate(zip(target.shape, partial.shape)) if n == 1 and m != 1
        )  # an axis of length 1 that einsum broadcast: its gradient is summed
        target[...] = partial.sum(axis=broadcast, keepdims=True) if broadcast else partial
        return grad_k
