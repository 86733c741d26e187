"""Data types: PyTorch's names for NumPy's dtypes, the default float type, and PyTorch's promotion.

``cr.float32`` (alias ``cr.float``) *is* ``numpy.dtype('float32')``, so ``x.dtype == cr.float``
holds and arrays and tensors speak the same language.

Type promotion follows PyTorch, not NumPy, so that a float32 network stays float32:

* categories rank bool < integer < floating;
* operands are grouped as dimensioned tensors, zero-dimensional tensors and Python numbers; a
  later group only changes the result when it is of a *higher category* than the groups before it
  (float32 tensor * 2.5 -> float32; float32 tensor * int64 tensor -> float32;
  int64 tensor * 2.5 -> the default float type);
* within a category the wider type wins (float32 + float64 tensors -> float64, uint8 + int8 -> int16).
"""

from __future__ import annotations

from .backend import xp

float16 = xp.dtype("float16")
float32 = xp.dtype("float32")
float64 = xp.dtype("float64")
uint8 = xp.dtype("uint8")
int8 = xp.dtype("int8")
int16 = xp.dtype("int16")
int32 = xp.dtype("int32")
int64 = xp.dtype("int64")
bool_ = xp.dtype("bool")

NAMES = {
    "float16": float16,
    "half": float16,
    "float32": float32,
    "float": float32,
    "float64": float64,
    "double": float64,
    "uint8": uint8,
    "int8": int8,
    "int16": int16,
    "short": int16,
    "int32": int32,
    "int": int32,
    "int64": int64,
    "long": int64,
    "bool": bool_,
}
"""Every dtype name chainrule exports (``cr.float``, ``cr.long``, ...)."""

_default_float = float32


def get_default_dtype():
    """The float type of new tensors and layers made without a dtype (float32 unless changed)."""
    return _default_float


def set_default_dtype(dtype) -> None:
    """Make ``dtype`` (a float type) the default for new tensors and layers, as PyTorch's."""
    global _default_float
    dtype = as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"the default dtype must be a floating-point type, got {dtype}")
    _default_float = dtype


def as_dtype(dtype):
    """Normalise a dtype spelling (``'float32'``, ``'long'``, ``np.float64``, ``cr.double``)."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in NAMES:
        return NAMES[dtype]
    if dtype is float:
        return _default_float
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    try:
        result = xp.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None
    if result.kind not in "biuf":
        raise TypeError(f"chainrule tensors hold booleans, integers or floats, not {result}")
    return result


def is_floating_point(dtype) -> bool:
    return xp.dtype(dtype).kind == "f"


def category(dtype) -> int:
    """0 for bool, 1 for integers, 2 for floats: the order in which types win."""
    kind = dtype.kind
    return 2 if kind == "f" else 0 if kind == "b" else 1


def promote_types(a, b):
    """The smallest type both ``a`` and ``b`` convert to, by PyTorch's table: a float type always
    beats an integer (int64 with float16 is float16, where NumPy says float64)."""
    a, b = xp.dtype(a), xp.dtype(b)
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    return xp.promote_types(a, b)


def _python_number_dtype(value):
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    return _default_float


def result_type(*operands):
    """The dtype of an elementwise operation on ``operands`` (tensors, arrays, Python numbers),
    by PyTorch's rules (see the module docstring)."""
    groups = [None, None, None]  # dimensioned, zero-dimensional, Python numbers
    for x in operands:
        if x is None:
            continue
        if isinstance(x, xp.generic):
            x = x.item()  # NumPy scalars count as Python numbers
        if isinstance(x, (bool, int, float)):
            group, dtype = 2, _python_number_dtype(x)
        else:
            array = getattr(x, "_data", x) if not isinstance(x, xp.ndarray) else x
            array = xp.asarray(array)
            group, dtype = (1 if array.ndim == 0 else 0), array.dtype
        groups[group] = dtype if groups[group] is None else promote_types(groups[group], dtype)
    return _combine(groups[0], _combine(groups[1], groups[2]))


def _combine(higher, lower):
    """PyTorch's rule for letting a lower-priority group change the result: only by category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if category(higher) == 2:
        return higher
    if category(higher) == 0 or category(lower) == 2:
        return promote_types(higher, lower)
    return higher


def can_cast(from_dtype, to_dtype) -> bool:
    """Whether an in-place result of ``from_dtype`` may be stored in ``to_dtype`` (PyTorch's
    rule: never down a category, e.g. float into an integer tensor)."""
    return category(xp.dtype(from_dtype)) <= category(xp.dtype(to_dtype))


def finfo(dtype=None):
    """Machine limits of a float type (``eps``, ``tiny``, ``max``, ...), as ``torch.finfo``."""
    return xp.finfo(as_dtype(dtype) or _default_float)


def iinfo(dtype):
    """Limits of an integer type (``min``, ``max``, ``bits``), as ``torch.iinfo``."""
    return xp.iinfo(as_dtype(dtype))
