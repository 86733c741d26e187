"""Making tensors: from data, filled with a value, evenly spaced, or random.

Each function takes PyTorch's arguments (``dtype=``, ``device=``, ``requires_grad=``, and
``generator=`` for the random ones). Floats default to ``cr.get_default_dtype()`` (float32);
Python integers make int64 tensors and booleans bool tensors, as in PyTorch.
"""

from __future__ import annotations

import math

from .backend import xp
from .devices import check_device
from .dtypes import as_dtype, get_default_dtype
from .generator import stream
from .tensor import _TYPE_NAMES, Size, Tensor, _init, _plain, _raw


def _new(array, requires_grad: bool, device) -> Tensor:
    check_device(device)
    t = object.__new__(Tensor)
    _init(t, array, requires_grad)
    return t


def _size(size) -> tuple:
    """Sizes given as ``f(2, 3)``, ``f((2, 3))`` or ``f([2, 3])``."""
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"sizes must be non-negative integers, got {size}")
    return tuple(size)


def _float(dtype):
    return as_dtype(dtype) or get_default_dtype()


# -- from data -----------------------------------------------------------------------------------


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists, an array or a tensor).

    Python floats give the default float type, integers int64 and booleans bool; NumPy arrays
    keep their dtype (so float64 data stays float64 unless ``dtype`` says otherwise).
    """
    return _new(_to_array(data, as_dtype(dtype), copy=True), requires_grad, device)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor`, but shares memory with ``data`` when it is already an array or a
    tensor of the requested type."""
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype) == data.dtype):
        return data
    return _new(_to_array(data, as_dtype(dtype), copy=False), False, device)


def from_numpy(array) -> Tensor:
    """A tensor sharing ``array``'s memory: changes to one show in the other."""
    if not isinstance(array, xp.ndarray):
        raise TypeError(f"from_numpy expects a NumPy array, got {type(array).__name__}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: arrays of dtype {array.dtype} cannot be tensors")
    return _new(array, False, None)


def _to_array(data, dtype, copy: bool):
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        return xp.array(_plain(data), dtype=dtype, copy=copy or None)
    array = xp.asarray(_plain(data))
    if array.dtype.kind == "f" and not isinstance(data, (xp.ndarray, xp.generic)):
        return array.astype(get_default_dtype())  # Python floats: the default float type
    if array.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a tensor from {type(data).__name__} of dtype {array.dtype}")
    return xp.array(array, copy=True) if copy and array is data else array


# -- filled --------------------------------------------------------------------------------------


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(xp.zeros(_size(size), dtype=_float(dtype)), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(xp.ones(_size(size), dtype=_float(dtype)), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are not set (here: zeros, so nothing is ever random garbage)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (its type follows the value, as PyTorch)."""
    size = (size,) if isinstance(size, int) else tuple(size)
    if dtype is None:
        dtype = (
            xp.bool_
            if isinstance(fill_value, bool)
            else xp.int64
            if isinstance(fill_value, int)
            else get_default_dtype()
        )
    return _new(
        xp.full(_size(size), _raw(fill_value), dtype=as_dtype(dtype)), requires_grad, device
    )


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False):
    """The n x m identity matrix (ones on the diagonal)."""
    return _new(xp.eye(n, m, dtype=_float(dtype)), requires_grad, device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False):
    """Values from ``start`` up to (not including) ``end``: int64 for integer arguments, else
    the default float type."""
    if end is None:
        start, end = 0, start
    start, end, step = _raw(start), _raw(end), _raw(step)
    if dtype is None:
        integral = all(xp.asarray(v).dtype.kind in "iub" for v in (start, end, step))
        dtype = xp.int64 if integral else get_default_dtype()
    return _new(xp.arange(start, end, step).astype(as_dtype(dtype)), requires_grad, device)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False):
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    return _new(
        xp.linspace(_raw(start), _raw(end), steps).astype(_float(dtype)), requires_grad, device
    )


def logspace(
    start, end, steps: int, base: float = 10.0, dtype=None, device=None, requires_grad: bool = False
):
    """``base ** linspace(start, end, steps)``."""
    values = xp.logspace(_raw(start), _raw(end), steps, base=base)
    return _new(values.astype(_float(dtype)), requires_grad, device)


def _like(t, fill, dtype, requires_grad, device):
    array = _raw(t)
    dtype = as_dtype(dtype) or array.dtype
    return _new(xp.full(array.shape, fill, dtype=dtype), requires_grad, device)


def zeros_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(input, 0, dtype, requires_grad, device)


def ones_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(input, 1, dtype, requires_grad, device)


def empty_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(input, 0, dtype, requires_grad, device)


def full_like(input, fill_value, dtype=None, device=None, requires_grad: bool = False):
    return _like(input, _raw(fill_value), dtype, requires_grad, device)


# -- random --------------------------------------------------------------------------------------


def _random(sample, size, dtype, requires_grad, device, generator) -> Tensor:
    """Draw in float64 from ``generator`` and convert, so float32 and float64 tensors from the
    same seed hold the same numbers up to rounding."""
    values = sample(stream(generator), _size(size))
    return _new(values.astype(_float(dtype)), requires_grad, device)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False):
    """Samples of the standard normal distribution N(0, 1)."""
    return _random(lambda g, s: g.standard_normal(s), size, dtype, requires_grad, device, generator)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False):
    """Samples of the uniform distribution on [0, 1)."""
    return _random(lambda g, s: g.random(s), size, dtype, requires_grad, device, generator)


def randn_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    array = _raw(input)
    return randn(array.shape, dtype=dtype or array.dtype, requires_grad=requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    array = _raw(input)
    return rand(array.shape, dtype=dtype or array.dtype, requires_grad=requires_grad)


def randint(
    low,
    high=None,
    size=None,
    *,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    """Random integers in [low, high) (``randint(high, size)`` means low = 0); int64."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint needs a size, e.g. randint(0, 10, (3,))")
    values = stream(generator).integers(low, high, _size(tuple(size)))
    return _new(values.astype(as_dtype(dtype) or xp.int64), requires_grad, device)


def randint_like(input, low, high=None, dtype=None, device=None) -> Tensor:
    array = _raw(input)
    return randint(low, high, array.shape, dtype=dtype or array.dtype, device=device)


def randperm(n: int, *, generator=None, dtype=None, device=None) -> Tensor:
    """A random ordering of 0, 1, ..., n-1 (int64)."""
    return _new(stream(generator).permutation(n).astype(as_dtype(dtype) or xp.int64), False, device)


def normal(
    mean=0.0,
    std=1.0,
    size=None,
    *,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    """Samples of N(mean, std^2); ``mean`` and ``std`` may be tensors (broadcast together)."""
    mean_array, std_array = xp.asarray(_raw(mean)), xp.asarray(_raw(std))
    if size is None:
        size = xp.broadcast_shapes(mean_array.shape, std_array.shape)
    if (std_array < 0).any():
        raise ValueError("normal: std must be >= 0")
    dtype = as_dtype(dtype) or (
        mean_array.dtype
        if isinstance(mean, Tensor) and mean_array.dtype.kind == "f"
        else get_default_dtype()
    )
    values = stream(generator).normal(mean_array, std_array, _size(tuple(size)))
    return _new(values.astype(dtype), requires_grad, device)


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """1 with probability ``input`` (or ``p``) at each position, else 0; same shape and type."""
    probabilities = xp.asarray(_raw(input)) if p is None else xp.full(_raw(input).shape, p)
    if ((probabilities < 0) | (probabilities > 1)).any():
        raise ValueError("bernoulli: probabilities must be in [0, 1]")
    draws = stream(generator).random(probabilities.shape) < probabilities
    dtype = _raw(input).dtype if _raw(input).dtype.kind == "f" else get_default_dtype()
    return _new(draws.astype(dtype), False, None)


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None):
    """Indices drawn from each row of ``input`` (non-negative weights, not necessarily summing
    to 1), ``num_samples`` per row; without replacement an index is drawn at most once."""
    weights = xp.asarray(_raw(input), dtype=xp.float64)
    if weights.ndim not in (1, 2):
        raise ValueError(f"multinomial expects a 1-D or 2-D tensor, got shape {weights.shape}")
    rows = weights.reshape(-1, weights.shape[-1])
    if (rows < 0).any() or not xp.isfinite(rows).all() or (rows.sum(axis=1) <= 0).any():
        raise ValueError("multinomial: weights must be finite, non-negative, with a positive sum")
    if not replacement and num_samples > (rows > 0).sum(axis=1).min():
        raise ValueError(
            "multinomial: cannot draw more samples than non-zero weights without replacement"
        )
    g = stream(generator)
    out = xp.stack(
        [g.choice(len(row), num_samples, replace=replacement, p=row / row.sum()) for row in rows]
    )
    return _new(out.reshape(*weights.shape[:-1], num_samples).astype(xp.int64), False, None)


def numel(input) -> int:
    """How many values ``input`` holds."""
    return math.prod(_raw(input).shape)


# -- PyTorch's legacy constructors ---------------------------------------------------------------


class LegacyTensorType(type):
    """The type of ``cr.FloatTensor``, ``cr.LongTensor``, ...: calling one makes a plain
    :class:`Tensor` of its dtype (``LongTensor([1, 2])`` from data, ``FloatTensor(2, 3)`` of that
    shape, zero-filled), and ``isinstance(t, cr.LongTensor)`` asks whether ``t`` holds int64, as
    PyTorch's legacy types do. There are no tensors of these types: they are names for dtypes."""

    def __call__(cls, *args, device=None) -> Tensor:
        return Tensor(*args, dtype=cls.dtype, device=device)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype


def _legacy(dtype_name: str) -> LegacyTensorType:
    name = _TYPE_NAMES[dtype_name]
    doc = f"``{name}(data)`` or ``{name}(*sizes)``: a {dtype_name} tensor (legacy, as PyTorch's)."
    namespace = {"dtype": as_dtype(dtype_name), "__doc__": doc, "__module__": "chainrule"}
    return LegacyTensorType(name, (), namespace)


FloatTensor = _legacy("float32")
DoubleTensor = _legacy("float64")
HalfTensor = _legacy("float16")
LongTensor = _legacy("int64")
IntTensor = _legacy("int32")
ShortTensor = _legacy("int16")
CharTensor = _legacy("int8")
ByteTensor = _legacy("uint8")
BoolTensor = _legacy("bool")
