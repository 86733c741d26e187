"""Activation functions and the softmax family, written to be stable for |x| up to 1000 and beyond.

Each op states its forward formula and local derivative in its docstring.
"""

from __future__ import annotations

import math

from ..backend import erf, xp
from ..function import Function
from ..sums import last_axes_sums
from ..threads import by_rows, elementwise, worth_splitting


class ReLU(Function):
    """z = max(x, 0).   dz/dx = [x > 0].   (Large arrays are done in pieces on the batch pool.)"""

    def forward(self, x):
        if not worth_splitting(3 * x.nbytes):
            self.save(x > 0)
            return xp.maximum(x, 0)
        positive, z = xp.empty_like(x, dtype=bool), xp.empty_like(x)
        elementwise(_relu_passes, x, positive, z)
        self.save(positive)
        return z

    def backward(self, grad):
        (positive,) = self.saved
        if not worth_splitting(3 * grad.nbytes):
            return grad * positive
        grad_x = xp.empty_like(positive, dtype=grad.dtype)
        elementwise(xp.multiply, grad, positive, grad_x)
        return grad_x


def _relu_passes(x, positive, z):
    """ReLU's forward into given arrays (for :func:`~chainrule.threads.elementwise`)."""
    xp.greater(x, 0, out=positive)
    xp.maximum(x, 0, out=z)


class LeakyReLU(Function):
    """z = x if x > 0 else slope * x.   dz/dx = 1 if x > 0 else slope."""

    def forward(self, x, negative_slope=0.01):
        positive = x > 0
        self.save(positive, negative_slope)
        return xp.where(positive, x, x * negative_slope)

    def backward(self, grad):
        positive, slope = self.saved
        return xp.where(positive, grad, grad * slope)


def stable_sigmoid(x):
    """1 / (1 + e^-x) computed from e^-|x| so that nothing overflows."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    """z = 1 / (1 + e^-x).   dz/dx = z (1 - z)."""

    float_result = True

    def forward(self, x):
        z = stable_sigmoid(x)
        self.save(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * z * (1 - z)


class Tanh(Function):
    """z = tanh(x).   dz/dx = 1 - z^2."""

    float_result = True

    def forward(self, x):
        z = xp.tanh(x)
        self.save(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * (1 - z * z)


class GELU(Function):
    """z = x Phi(x), Phi the standard normal CDF.   dz/dx = Phi(x) + x phi(x).

    ``approximate='tanh'`` uses PyTorch's tanh formula instead of the exact erf:
    z = x/2 (1 + tanh(u)),  u = sqrt(2/pi)(x + 0.044715 x^3).
    """

    float_result = True

    def forward(self, x, approximate="none"):
        self.save(x, approximate)
        if approximate == "tanh":
            return 0.5 * x * (1 + xp.tanh(_gelu_u(x)))
        return x * (0.5 * (1 + erf(x * (1 / math.sqrt(2)))))

    def backward(self, grad):
        x, approximate = self.saved
        if approximate == "tanh":
            t = xp.tanh(_gelu_u(x))
            du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
        cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return grad * (cdf + x * pdf)


def _gelu_u(x):
    return math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)


class Softplus(Function):
    """z = log(1 + e^(beta x)) / beta  (z = x where beta x > threshold).   dz/dx = sigmoid(beta x)."""

    float_result = True

    def forward(self, x, beta=1.0, threshold=20.0):
        bx = x * beta
        linear = bx > threshold
        self.save(bx, linear)
        return xp.where(linear, x, xp.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)

    def backward(self, grad):
        bx, linear = self.saved
        return grad * xp.where(linear, 1, stable_sigmoid(bx)).astype(grad.dtype, copy=False)


def _sums(x, axis):
    """sum of x along ``axis``, kept as length 1 (a BLAS product for the last axis: sums.py)."""
    if axis in (-1, x.ndim - 1):
        return last_axes_sums(x)
    return xp.sum(x, axis=axis, keepdims=True)


def _shift(x, axis):
    """The max of x along ``axis`` (kept as length 1): x minus it never overflows exp. A row
    whose max is not finite (all -inf, say) is not shifted."""
    shift = xp.max(x, axis=axis, keepdims=True)
    if not xp.isfinite(shift).all():
        shift = xp.where(xp.isfinite(shift), shift, 0)
    return shift


def _logsumexp(x, axis, keepdims=True):
    """log sum e^x along ``axis`` after shifting by the max (so exp never overflows)."""
    shift = _shift(x, axis)
    powers = x - shift
    xp.exp(powers, out=powers)
    out = xp.log(_sums(powers, axis)) + shift
    return out if keepdims else xp.squeeze(out, axis=axis)


def softmax_into(x, z, axis):
    """z = e^(x - max) / sum e^(x - max) along ``axis`` (rows at a time: threads.by_rows)."""
    xp.subtract(x, _shift(x, axis), out=z)
    xp.exp(z, out=z)
    z *= 1 / _sums(z, axis)  # one division per row, then products


def softmax_gradient_into(grad, z, grad_x, axis):
    """grad_x = z (g - sum(g z)) along ``axis``: softmax's derivative (rows at a time)."""
    xp.multiply(grad, z, out=grad_x)
    xp.subtract(grad, _sums(grad_x, axis), out=grad_x)
    grad_x *= z


def log_softmax_into(x, z, softmax, axis):
    """z = x - max - log sum e^(x - max) along ``axis``, and the softmax e^z into ``softmax``
    (given None: only z)."""
    xp.subtract(x, _shift(x, axis), out=z)
    softmax = xp.exp(z, out=softmax)
    total = _sums(softmax, axis)
    z -= xp.log(total)
    softmax *= 1 / total


def log_softmax_gradient_into(grad, softmax, grad_x, axis):
    """grad_x = g - softmax sum(g) along ``axis``: log-softmax's derivative (rows at a time)."""
    xp.multiply(softmax, _sums(grad, axis), out=grad_x)
    xp.subtract(grad, grad_x, out=grad_x)


class Softmax(Function):
    """z_i = e^(x_i) / sum_j e^(x_j).   dz_i/dx_j = z_i ([i = j] - z_j), so dx = z (g - sum(g z))."""

    float_result = True

    def forward(self, x, axis=-1):
        z = xp.empty_like(x)
        by_rows(softmax_into, x, z, axis=axis)
        self.save(z, axis)
        return z

    def backward(self, grad):
        z, axis = self.saved
        grad_x = xp.empty_like(z)
        by_rows(softmax_gradient_into, xp.ascontiguousarray(grad), z, grad_x, axis=axis)
        return grad_x


class LogSoftmax(Function):
    """z_i = x_i - log sum_j e^(x_j).   dz_i/dx_j = [i = j] - softmax_j, so dx = g - softmax sum(g)."""

    float_result = True

    def forward(self, x, axis=-1):
        z, softmax = xp.empty_like(x), xp.empty_like(x)  # softmax kept: cheaper than another exp
        by_rows(log_softmax_into, x, z, softmax, axis=axis)
        self.save(softmax, axis)
        return z

    def backward(self, grad):
        softmax, axis = self.saved
        grad_x = xp.empty_like(softmax)
        by_rows(log_softmax_gradient_into, xp.ascontiguousarray(grad), softmax, grad_x, axis=axis)
        return grad_x


class LogSumExp(Function):
    """z = log sum_i e^(x_i) along ``axis``.   dz/dx_i = softmax(x)_i."""

    float_result = True

    def forward(self, x, axis=None, keepdims=False):
        z = _logsumexp(x, axis, keepdims=True)
        self.save(x, z)
        return z if keepdims else xp.squeeze(z, axis=axis)

    def backward(self, grad):
        x, z = self.saved
        grad = grad.reshape(z.shape)  # put back the reduced axes as length 1
        return grad * xp.exp(x - z)
