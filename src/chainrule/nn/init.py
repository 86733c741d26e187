"""Weight initialisation (in place, seeded by ``cr.manual_seed`` or a ``generator=``), with
PyTorch's names, arguments and formulas.

fan_in/fan_out of a weight of shape (out, in, *kernel) are in * prod(kernel) and
out * prod(kernel). Kaiming: std = gain / sqrt(fan); Xavier: std = gain sqrt(2 / (fan_in + fan_out));
a uniform distribution with the same std has bound sqrt(3) std. Every function fills the tensor's
own storage (as an in-place change outside autograd, like PyTorch's ``torch.no_grad()`` fills)
and returns it.
"""

from __future__ import annotations

import math

from ..backend import xp
from ..engine import no_grad
from ..generator import stream
from ..tensor import Tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps activations' scale through a layer followed by ``nonlinearity``."""
    linear = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d")
    if nonlinearity in linear or nonlinearity.startswith("conv_transpose"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def fans(tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with >= 2 dimensions, got {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


_calculate_fan_in_and_fan_out = fans  # PyTorch's name, used by hand-written reset_parameters


def _fill(tensor, values):
    """Write ``values`` into ``tensor``'s storage (its version counter sees the change)."""
    with no_grad():
        tensor.copy_(Tensor._make(xp.asarray(values).astype(tensor._data.dtype), False))
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    return _fill(tensor, stream(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    return _fill(tensor, stream(generator).normal(mean, std, tensor.shape))


def trunc_normal_(
    tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator=None
):
    """Fill with N(mean, std^2) restricted to [a, b] (values outside are drawn again)."""
    if not a < b:
        raise ValueError(f"trunc_normal_: a={a} must be smaller than b={b}")
    rng = stream(generator)
    values = rng.normal(mean, std, tensor.shape)
    for _ in range(1000):
        outside = (values < a) | (values > b)
        if not outside.any():
            return _fill(tensor, values)
        values[outside] = rng.normal(mean, std, int(outside.sum()))
    raise ValueError(f"trunc_normal_: [{a}, {b}] holds almost none of N({mean}, {std}^2); widen it")


def zeros_(tensor):
    return _fill(tensor, xp.zeros(tensor.shape))


def ones_(tensor):
    return _fill(tensor, xp.ones(tensor.shape))


def constant_(tensor, val: float):
    return _fill(tensor, xp.full(tensor.shape, val))


def eye_(tensor):
    """The identity matrix (a 2-D tensor; ones on the diagonal of a non-square one)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_ needs a 2-D tensor, got shape {tuple(tensor.shape)}")
    return _fill(tensor, xp.eye(*tensor.shape))


def dirac_(tensor, groups: int = 1):
    """Convolution filters that pass channel k of each group through unchanged (a 1 at the
    kernel's centre of filter k, input channel k): a 3-, 4- or 5-D weight."""
    shape = tuple(tensor.shape)
    if len(shape) not in (3, 4, 5) or shape[0] % groups:
        raise ValueError(
            f"dirac_ needs a 3-, 4- or 5-D weight whose out channels divide by groups={groups}, "
            f"got shape {shape}"
        )
    per_group = shape[0] // groups
    values = xp.zeros(shape)
    centre = tuple(n // 2 for n in shape[2:])
    for g in range(groups):
        for k in range(min(per_group, shape[1])):
            values[(g * per_group + k, k, *centre)] = 1
    return _fill(tensor, values)


def kaiming_uniform_(
    tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None
):
    """He initialisation, uniform: U(-b, b) with b = gain sqrt(3 / fan)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None
):
    """He initialisation, normal: N(0, (gain / sqrt(fan))^2)."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot initialisation, uniform: U(-b, b) with b = gain sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """Glorot initialisation, normal: N(0, gain^2 2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """A (semi-)orthogonal matrix times ``gain``: the Q of the QR decomposition of a Gaussian
    matrix (signs fixed so that it is uniformly distributed), over the weight's first axis and
    the rest flattened."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor with >= 2 dimensions, got {tensor.ndim}")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = stream(generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q *= xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def sparse_(tensor, sparsity: float, std: float = 0.01, generator=None):
    """A 2-D weight from N(0, std^2) with a fraction ``sparsity`` of each column set to 0."""
    if tensor.ndim != 2:
        raise ValueError(f"sparse_ needs a 2-D tensor, got shape {tuple(tensor.shape)}")
    rng = stream(generator)
    rows, cols = tensor.shape
    values = rng.normal(0.0, std, (rows, cols))
    zeros = math.ceil(sparsity * rows)
    for col in range(cols):
        values[rng.permutation(rows)[:zeros], col] = 0
    return _fill(tensor, values)


def _kaiming_std(tensor, a, mode, nonlinearity) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        return 0.0
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)
