"""More elementwise math: trigonometry, log1p/expm1, and the rounding family.

Each op states its forward formula and local derivative in its docstring. The rounding ops
(``sign``, ``floor``, ``ceil``, ``round``, ``trunc``) are flat between their jumps, so their
derivative is 0 everywhere it exists; as in PyTorch they pass back a gradient of zeros.
"""

from __future__ import annotations

from ..backend import xp
from ..function import Function


class Sin(Function):
    """z = sin(a).   dz/da = cos(a)."""

    float_result = True

    def forward(self, a):
        self.save(a)
        return xp.sin(a)

    def backward(self, grad):
        (a,) = self.saved
        return grad * xp.cos(a)


class Cos(Function):
    """z = cos(a).   dz/da = -sin(a)."""

    float_result = True

    def forward(self, a):
        self.save(a)
        return xp.cos(a)

    def backward(self, grad):
        (a,) = self.saved
        return -grad * xp.sin(a)


class Tan(Function):
    """z = tan(a).   dz/da = 1 + tan(a)^2 = 1 + z^2."""

    float_result = True

    def forward(self, a):
        z = xp.tan(a)
        self.save(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * (1 + z * z)


class Log1p(Function):
    """z = ln(1 + a), accurate for small a.   dz/da = 1 / (1 + a)."""

    float_result = True

    def forward(self, a):
        self.save(a)
        return xp.log1p(a)

    def backward(self, grad):
        (a,) = self.saved
        return grad / (1 + a)


class Expm1(Function):
    """z = e^a - 1, accurate for small a.   dz/da = e^a = z + 1."""

    float_result = True

    def forward(self, a):
        z = xp.expm1(a)
        self.save(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * (z + 1)


class _Flat(Function):
    """Base of the rounding ops: z = f(a) with f piecewise constant.   dz/da = 0."""

    saves_inputs = False
    compute = staticmethod(xp.sign)

    def forward(self, a):
        return self.compute(a)

    def backward(self, grad):
        return xp.zeros_like(grad)


class Sign(_Flat):
    """z = sign(a) in {-1, 0, 1}.   dz/da = 0."""

    compute = staticmethod(xp.sign)


class Floor(_Flat):
    """z = the largest integer <= a.   dz/da = 0."""

    compute = staticmethod(xp.floor)


class Ceil(_Flat):
    """z = the smallest integer >= a.   dz/da = 0."""

    compute = staticmethod(xp.ceil)


class Trunc(_Flat):
    """z = a with its fractional part dropped (towards 0).   dz/da = 0."""

    compute = staticmethod(xp.trunc)


class Round(_Flat):
    """z = a rounded to ``decimals`` places, halves to even (as PyTorch and NumPy).   dz/da = 0."""

    def forward(self, a, decimals=0):
        return xp.round(a, decimals)
