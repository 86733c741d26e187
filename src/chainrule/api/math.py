"""Elementwise math as functions: ``cr.add(a, b)``, ``cr.exp(t)``, ``cr.clamp(t, 0, 1)``, ...

Arguments are named as in PyTorch (``input``, ``other``, ``exponent``, ``min``, ``max``) and every
function is also a Tensor method (``t.exp()``, ``t.add(u, alpha=2)``). Each hands plain values to
one op of :mod:`chainrule.ops` (or combines existing ones), where the derivative lives.
"""

from __future__ import annotations

from ..backend import xp
from ..dtypes import as_dtype, is_floating_point, result_type
from ..ops import arithmetic as ar
from ..ops import math as mt
from ..tensor import Tensor, _raw, check_not_recording_leaf

# -- arithmetic ----------------------------------------------------------------------------------


def add(input, other, *, alpha=1, out=None) -> Tensor:
    """input + alpha * other, with broadcasting."""
    if alpha != 1:
        other = _scaled(other, alpha)
    result = ar.Add.apply(input, other)
    return result if out is None else write_out(result, out)


def sub(input, other, *, alpha=1, out=None) -> Tensor:
    """input - alpha * other, with broadcasting."""
    if alpha != 1:
        other = _scaled(other, alpha)
    result = ar.Sub.apply(input, other)
    return result if out is None else write_out(result, out)


def _scaled(other, alpha):
    """alpha * other: a Python number stays a number (it must not change the result's type)."""
    return other * alpha if isinstance(other, (int, float)) else ar.Mul.apply(other, alpha)


def mul(input, other, *, out=None) -> Tensor:
    """input * other elementwise, with broadcasting."""
    result = ar.Mul.apply(input, other)
    return result if out is None else write_out(result, out)


def div(input, other, *, rounding_mode: str | None = None, out=None) -> Tensor:
    """input / other elementwise (true division); ``rounding_mode`` ``'floor'`` or ``'trunc'``
    rounds the quotient (integers stay integers then, as in PyTorch)."""
    if rounding_mode is None:
        result = ar.Div.apply(input, other)
        return result if out is None else write_out(result, out)
    if rounding_mode not in ("floor", "trunc"):
        raise ValueError(
            f"div rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}"
        )
    dtype = result_type(input, other)
    if not is_floating_point(dtype):
        a, b = _raw(input), _raw(other)
        if rounding_mode == "floor":
            quotient = xp.floor_divide(a, b)
        else:
            quotient = xp.trunc(xp.true_divide(a, b))
        return write_out(Tensor._make(xp.asarray(quotient).astype(dtype, copy=False), False), out)
    rounded = floor if rounding_mode == "floor" else trunc
    return write_out(rounded(ar.Div.apply(input, other)), out)


def floor_divide(input, other) -> Tensor:
    """input / other rounded down (PyTorch's ``//``)."""
    return div(input, other, rounding_mode="floor")


def remainder(input, other) -> Tensor:
    """input - floor(input / other) * other: the remainder with the sign of ``other`` (``%``)."""
    if not is_floating_point(result_type(input, other)):
        return Tensor._make(xp.asarray(xp.mod(_raw(input), _raw(other))), False)
    return sub(input, mul(div(input, other, rounding_mode="floor"), other))


def pow(input, exponent) -> Tensor:  # noqa: A001 - the name users know
    """input ** exponent elementwise (either may be a number)."""
    return ar.Pow.apply(input, exponent)


def square(input) -> Tensor:
    """input ** 2."""
    return ar.Pow.apply(input, 2)


def neg(input) -> Tensor:
    """-input."""
    return ar.Neg.apply(input)


negative = neg


def reciprocal(input) -> Tensor:
    """1 / input."""
    return ar.Div.apply(1.0, input)


# -- unary math ----------------------------------------------------------------------------------


def abs(input) -> Tensor:  # noqa: A001
    """|input|."""
    return ar.Abs.apply(input)


absolute = abs


def exp(input) -> Tensor:
    """e ** input."""
    return ar.Exp.apply(input)


def expm1(input) -> Tensor:
    """e ** input - 1, accurate for small inputs."""
    return mt.Expm1.apply(input)


def log(input) -> Tensor:
    """Natural logarithm."""
    return ar.Log.apply(input)


def log1p(input) -> Tensor:
    """ln(1 + input), accurate for small inputs."""
    return mt.Log1p.apply(input)


def sqrt(input) -> Tensor:
    """Square root."""
    return ar.Sqrt.apply(input)


def rsqrt(input) -> Tensor:
    """1 / sqrt(input)."""
    return ar.Div.apply(1.0, ar.Sqrt.apply(input))


def sin(input) -> Tensor:
    """Sine (radians)."""
    return mt.Sin.apply(input)


def cos(input) -> Tensor:
    """Cosine (radians)."""
    return mt.Cos.apply(input)


def tan(input) -> Tensor:
    """Tangent (radians)."""
    return mt.Tan.apply(input)


def sign(input) -> Tensor:
    """-1, 0 or 1 by the sign of each value (gradient 0)."""
    return mt.Sign.apply(input)


def floor(input) -> Tensor:
    """Round down to an integer value (same dtype; gradient 0)."""
    return _rounding(mt.Floor, input)


def ceil(input) -> Tensor:
    """Round up to an integer value (same dtype; gradient 0)."""
    return _rounding(mt.Ceil, input)


def trunc(input) -> Tensor:
    """Round towards zero (same dtype; gradient 0)."""
    return _rounding(mt.Trunc, input)


def round(input, *, decimals: int = 0) -> Tensor:  # noqa: A001
    """Round to ``decimals`` places, halves to even (same dtype; gradient 0)."""
    if _is_integer(input) and decimals >= 0:
        return clone(input)
    return mt.Round.apply(input, decimals=decimals)


def _rounding(op, input) -> Tensor:
    """Integers are already whole: they come back unchanged (a copy), as in PyTorch."""
    return clone(input) if _is_integer(input) else op.apply(input)


def _is_integer(x) -> bool:
    return xp.asarray(_raw(x)).dtype.kind in "iub"


# -- two inputs ----------------------------------------------------------------------------------


def maximum(input, other) -> Tensor:
    """Elementwise max(input, other); ties share the gradient."""
    return ar.Maximum.apply(input, other)


def minimum(input, other) -> Tensor:
    """Elementwise min(input, other); ties share the gradient."""
    return ar.Minimum.apply(input, other)


def clamp(input, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Limit values to [min, max] (either bound may be None, a number or a tensor)."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min= and max=")
    return ar.Clip.apply(input, low=_raw(min), high=_raw(max))


clip = clamp


def where(condition, input=None, other=None) -> Tensor:
    """``input`` where ``condition`` is true, else ``other`` (with broadcasting); ``condition`` is
    not differentiated. With only ``condition``: the indices where it is true, one tensor per axis.
    """
    if input is None and other is None:
        return tuple(Tensor._make(i, False) for i in xp.nonzero(xp.asarray(_raw(condition))))
    dtype = result_type(input, other)
    return ar.Where.apply(
        xp.asarray(_raw(condition), dtype=bool), _as_type(input, dtype), _as_type(other, dtype)
    )


def lerp(input, end, weight) -> Tensor:
    """input + weight * (end - input)."""
    return add(input, mul(weight, sub(end, input)))


def _as_type(x, dtype):
    """``x`` in ``dtype`` (differentiably for tensors); Python numbers are left to NumPy."""
    if isinstance(x, Tensor):
        return x if x.dtype == dtype else astype(x, dtype)
    if isinstance(x, (bool, int, float)):
        return x
    return xp.asarray(x, dtype=dtype)


# -- copies and types ----------------------------------------------------------------------------


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a chainrule tensor (a Parameter too)."""
    return isinstance(obj, Tensor)


def astype(input, dtype) -> Tensor:
    """A copy converted to ``dtype``; float-to-float casts pass gradients back."""
    dtype = as_dtype(dtype)
    if not (is_floating_point(dtype) and is_floating_point(_raw(input).dtype)):
        return Tensor._make(_raw(input).astype(dtype), False)
    return ar.Cast.apply(input, dtype=dtype)


def clone(input, *, memory_format=None) -> Tensor:
    """A copy with its own storage (gradients flow back to ``input``)."""
    return ar.Clone.apply(input)


def contiguous(input, memory_format=None) -> Tensor:
    """``input`` itself when its values are laid out in C order, else a contiguous copy."""
    return input if _raw(input).flags.c_contiguous else clone(input)


def write_out(result: Tensor, out) -> Tensor:
    """PyTorch's ``out=``: write ``result`` into the tensor ``out`` (same shape) and return it."""
    if out is None:
        return result
    if result.requires_grad:
        raise RuntimeError(
            "functions with out=... arguments don't support automatic differentiation, but one "
            "of the arguments requires grad"
        )
    if not isinstance(out, Tensor):
        raise TypeError(f"out= must be a tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(result.shape):
        raise RuntimeError(f"out= has shape {tuple(out.shape)}, the result {tuple(result.shape)}")
    check_not_recording_leaf(out, "out=")
    return out.copy_(result)
