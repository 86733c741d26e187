"""Elementwise arithmetic. Each op: forward formula and local derivative side by side.

Gradients are returned in the output's (broadcast) shape; the engine sums them back to each
input's shape.
"""

from __future__ import annotations

from ..backend import ignore_float_errors, xp
from ..function import Function


class Add(Function):
    """z = a + b.   dz/da = 1,  dz/db = 1."""

    promotes, saves_inputs = True, False

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    """z = a - b.   dz/da = 1,  dz/db = -1."""

    promotes, saves_inputs = True, False

    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        return grad, -grad


class Mul(Function):
    """z = a * b.   dz/da = b,  dz/db = a."""

    promotes = True

    def forward(self, a, b):
        self.save(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved
        grad_a = grad * b if self.needs_grad[0] else None
        grad_b = grad * a if self.needs_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """z = a / b (true division: integers give floats).   dz/da = 1 / b,  dz/db = -a / b^2 = -z / b."""

    promotes, float_result = True, True

    def forward(self, a, b):
        z = a / b
        self.save(b, z)
        return z

    def backward(self, grad):
        b, z = self.saved
        grad_a = grad / b
        grad_b = -grad_a * z if self.needs_grad[1] else None
        return grad_a, grad_b


class Pow(Function):
    """z = a ** b.   dz/da = b * a^(b-1),  dz/db = z * log(a)  (defined for a > 0)."""

    promotes = True

    def forward(self, a, b):
        z = a**b
        self.save(a, b, z)
        return z

    def backward(self, grad):
        a, b, z = self.saved
        grad_a = grad * b * a ** (b - 1) if self.needs_grad[0] else None
        grad_b = None
        if self.needs_grad[1]:
            with ignore_float_errors(divide="ignore", invalid="ignore"):
                grad_b = grad * z * xp.log(a)
        return grad_a, grad_b


class Neg(Function):
    """z = -a.   dz/da = -1."""

    saves_inputs = False

    def forward(self, a):
        return -a

    def backward(self, grad):
        return -grad


class Abs(Function):
    """z = |a|.   dz/da = sign(a)  (0 at a = 0, as PyTorch)."""

    def forward(self, a):
        self.save(a)
        return xp.abs(a)

    def backward(self, grad):
        (a,) = self.saved
        return grad * xp.sign(a)


class Exp(Function):
    """z = e^a.   dz/da = e^a = z."""

    float_result = True

    def forward(self, a):
        z = xp.exp(a)
        self.save(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * z


class Log(Function):
    """z = ln(a).   dz/da = 1 / a.   ln(0) = -inf without a warning, as PyTorch's (masks are
    built as log(tril(ones)))."""

    float_result = True

    def forward(self, a):
        self.save(a)
        with ignore_float_errors(divide="ignore"):
            return xp.log(a)

    def backward(self, grad):
        (a,) = self.saved
        return grad / a


class Sqrt(Function):
    """z = sqrt(a).   dz/da = 1 / (2 sqrt(a)) = 0.5 / z."""

    float_result = True

    def forward(self, a):
        z = xp.sqrt(a)
        self.save(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * 0.5 / z


class Maximum(Function):
    """z = max(a, b).   dz/da = [a > b],  dz/db = [b > a];  ties send half to each (as PyTorch)."""

    promotes = True

    def forward(self, a, b):
        self.save(a, b)
        return xp.maximum(a, b)

    def backward(self, grad):
        a, b = self.saved
        share_a = _share(a > b, a == b, grad.dtype)
        return grad * share_a, grad * (1 - share_a)


class Minimum(Function):
    """z = min(a, b).   dz/da = [a < b],  dz/db = [b < a];  ties send half to each (as PyTorch)."""

    promotes = True

    def forward(self, a, b):
        self.save(a, b)
        return xp.minimum(a, b)

    def backward(self, grad):
        a, b = self.saved
        share_a = _share(a < b, a == b, grad.dtype)
        return grad * share_a, grad * (1 - share_a)


def _share(wins, ties, dtype):
    """1 where the first input wins, 0.5 on ties, 0 where it loses (in the gradient's dtype)."""
    share = xp.asarray(wins, dtype=dtype).copy()
    share[ties] = 0.5
    return share


class Clip(Function):
    """z = min(max(a, low), high).   dz/da = [low <= a <= high]  (as PyTorch's clamp)."""

    saves_inputs = False

    def forward(self, a, low=None, high=None):
        inside = xp.ones(a.shape, dtype=bool)
        if low is not None:
            inside &= a >= low
        if high is not None:
            inside &= a <= high
        self.save(inside)
        return xp.clip(a, low, high).astype(a.dtype, copy=False)

    def backward(self, grad):
        (inside,) = self.saved
        return grad * inside


class Where(Function):
    """z = a where cond else b.   dz/da = [cond],  dz/db = [not cond];  cond gets no gradient."""

    saves_inputs = False

    def forward(self, cond, a, b):
        cond = xp.asarray(cond, dtype=bool)
        self.save(cond)
        return xp.where(cond, a, b)

    def backward(self, grad):
        (cond,) = self.saved
        return None, grad * cond, grad * ~cond


class Cast(Function):
    """z = a converted to another float dtype.   dz/da = 1 (cast back to a's dtype)."""

    saves_inputs = False

    def forward(self, a, dtype=None):
        self.save(a.dtype)
        return a.astype(dtype)

    def backward(self, grad):
        (dtype,) = self.saved
        return grad.astype(dtype)


class Clone(Function):
    """z = a copy of a (new storage).   dz/da = 1."""

    saves_inputs = False

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return grad
