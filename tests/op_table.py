"""The one table of differentiable ops, shared by the gradcheck and the PyTorch cross-check.

Each case draws random shapes (broadcasting included) and parameters with hypothesis, and returns
float64 input arrays, the chainrule function of those inputs, and the same function written with
PyTorch (or None where PyTorch has no equivalent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import chainrule as cr


@dataclass
class Case:
    name: str
    build: Callable  # (draw, rng) -> (arrays, cr_fn, torch_fn)

    def __repr__(self) -> str:
        return self.name


CASES: list[Case] = []


def case(name):
    def register(build):
        CASES.append(Case(name, build))
        return build

    return register


# -- value domains -------------------------------------------------------------------------------


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    """Values with |x| >= 0.1, so finite differences never straddle a kink at 0."""
    return np.where(rng.random(shape) < 0.5, -1, 1) * rng.uniform(0.1, 2.0, shape)


def shape_of(draw, min_dims=0, max_dims=3):
    return draw(array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=4))


def broadcast_shapes(draw, n=2):
    return draw(
        mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3, min_side=1, max_side=4)
    ).input_shapes


def axis_of(draw, ndim):
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    choice = draw(st.sampled_from(["none", "int", "tuple"]))
    if choice == "none":
        return None
    if choice == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(axes)


def torch_dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


# -- arithmetic ----------------------------------------------------------------------------------


def _binary(name, cr_fn, torch_fn, domain_a=normal, domain_b=normal):
    @case(name)
    def build(draw, rng):
        sa, sb = broadcast_shapes(draw)
        return [domain_a(rng, sa), domain_b(rng, sb)], cr_fn, torch_fn


_binary("add", lambda a, b: a + b, lambda a, b: a + b)
_binary("sub", lambda a, b: a - b, lambda a, b: a - b)
_binary("mul", lambda a, b: a * b, lambda a, b: a * b)
_binary("div", lambda a, b: a / b, lambda a, b: a / b, domain_b=away_from_zero)
_binary("pow", lambda a, b: a**b, lambda a, b: a**b, domain_a=positive)
_binary("maximum", cr.maximum, lambda a, b: _torch().maximum(a, b))
_binary("minimum", cr.minimum, lambda a, b: _torch().minimum(a, b))


def _unary(name, cr_fn, torch_fn, domain=normal):
    @case(name)
    def build(draw, rng):
        return [domain(rng, shape_of(draw))], cr_fn, torch_fn


_unary("neg", lambda a: -a, lambda a: -a)
_unary("abs", cr.abs, lambda a: a.abs(), domain=away_from_zero)
_unary("exp", cr.exp, lambda a: a.exp())
_unary("log", cr.log, lambda a: a.log(), domain=positive)
_unary("sqrt", cr.sqrt, lambda a: a.sqrt(), domain=positive)
_unary(
    "scalar-left",
    lambda a: 2.0 - 3.0 / a + 2.0**a,
    lambda a: 2.0 - 3.0 / a + 2.0**a,
    domain=away_from_zero,
)
_unary(
    "scalar-right", lambda a: (a + 1.5) * 2.0 - a**2 / 4.0, lambda a: (a + 1.5) * 2.0 - a**2 / 4.0
)
_unary("relu", cr.relu, lambda a: a.relu(), domain=away_from_zero)
_unary("sigmoid", cr.sigmoid, lambda a: a.sigmoid())
_unary("tanh", cr.tanh, lambda a: a.tanh())


@case("clip")
def _clip(draw, rng):
    x = normal(rng, shape_of(draw))
    x = np.where(np.abs(np.abs(x) - 0.5) < 0.01, x * 1.1, x)  # keep away from the bounds
    low, high = draw(st.sampled_from([(-0.5, 0.5), (None, 0.5), (-0.5, None)]))
    return (
        [x],
        lambda a: cr.clip(a, low, high),
        lambda a: a.clamp(low, high),
    )


@case("where")
def _where(draw, rng):
    sc, sa, sb = broadcast_shapes(draw, 3)
    cond = rng.random(sc) < 0.5
    return (
        [normal(rng, sa), normal(rng, sb)],
        lambda a, b: cr.where(cond, a, b),
        lambda a, b: _torch().where(_torch().as_tensor(cond), a, b),
    )


@case("leaky_relu")
def _leaky(draw, rng):
    slope = draw(st.sampled_from([0.01, 0.2]))
    F = _torch_f()
    return (
        [away_from_zero(rng, shape_of(draw))],
        lambda a: cr.leaky_relu(a, slope),
        lambda a: F.leaky_relu(a, slope),
    )


@case("gelu")
def _gelu(draw, rng):
    approximate = draw(st.sampled_from(["none", "tanh"]))
    F = _torch_f()
    return (
        [normal(rng, shape_of(draw)) * 2],
        lambda a: cr.gelu(a, approximate),
        lambda a: F.gelu(a, approximate=approximate),
    )


@case("softplus")
def _softplus(draw, rng):
    beta = draw(st.sampled_from([1.0, 2.0]))
    F = _torch_f()
    x = normal(rng, shape_of(draw)) * 3
    return [x], lambda a: cr.softplus(a, beta), lambda a: F.softplus(a, beta=beta)


def _along_axis(name, cr_fn, torch_fn):
    @case(name)
    def build(draw, rng):
        shape = shape_of(draw, min_dims=1)
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        return (
            [normal(rng, shape) * 2],
            lambda a: cr_fn(a, axis=axis),
            lambda a: torch_fn(a, dim=axis),
        )


_along_axis("softmax", cr.softmax, lambda a, dim: a.softmax(dim))
_along_axis("log_softmax", cr.log_softmax, lambda a, dim: a.log_softmax(dim))


# -- reductions ----------------------------------------------------------------------------------


def _reduction(name, cr_fn, torch_fn, **extra):
    @case(name)
    def build(draw, rng):
        shape = shape_of(draw, min_dims=1)
        axis = axis_of(draw, len(shape))
        keepdims = draw(st.booleans())
        dims = torch_dims(axis, len(shape))
        return (
            [normal(rng, shape)],
            lambda a: cr_fn(a, axis=axis, keepdims=keepdims),
            lambda a: torch_fn(a, dims, keepdims),
        )


_reduction("sum", cr.sum, lambda a, d, k: a.sum(dim=d, keepdim=k))
_reduction("mean", cr.mean, lambda a, d, k: a.mean(dim=d, keepdim=k))
_reduction("max", cr.max, lambda a, d, k: a.amax(dim=d, keepdim=k))
_reduction("min", cr.min, lambda a, d, k: a.amin(dim=d, keepdim=k))
_reduction("logsumexp", cr.logsumexp, lambda a, d, k: a.logsumexp(dim=d, keepdim=k))


@case("var")
def _var(draw, rng):
    shape = shape_of(draw, min_dims=1)
    axis = axis_of(draw, len(shape))
    keepdims = draw(st.booleans())
    count = int(np.prod([shape[a] for a in cr.ops.reductions.normalize_axes(axis, len(shape))]))
    ddof = draw(st.sampled_from([0, 1])) if count > 1 else 0
    dims = torch_dims(axis, len(shape))
    return (
        [normal(rng, shape)],
        lambda a: cr.var(a, axis=axis, keepdims=keepdims, ddof=ddof),
        lambda a: a.var(dim=dims, keepdim=keepdims, correction=ddof),
    )


# -- shapes --------------------------------------------------------------------------------------


@case("reshape")
def _reshape(draw, rng):
    shape = shape_of(draw)
    size = int(np.prod(shape))
    new = (size,) if size % 2 else (2, -1)
    return [normal(rng, shape)], lambda a: a.reshape(new) * 1.5, lambda a: a.reshape(new) * 1.5


@case("flatten")
def _flatten(draw, rng):
    shape = shape_of(draw, min_dims=2)
    return [normal(rng, shape)], lambda a: cr.flatten(a, 1), lambda a: a.flatten(1)


@case("transpose")
def _transpose(draw, rng):
    shape = shape_of(draw, min_dims=2)
    i, j = draw(st.integers(0, len(shape) - 1)), draw(st.integers(0, len(shape) - 1))
    return [normal(rng, shape)], lambda a: a.transpose(i, j), lambda a: a.transpose(i, j)


@case("permute")
def _permute(draw, rng):
    shape = shape_of(draw, min_dims=1)
    order = draw(st.permutations(range(len(shape))))
    return [normal(rng, shape)], lambda a: a.permute(*order), lambda a: a.permute(*order)


@case("T")
def _T(draw, rng):
    shape = shape_of(draw, min_dims=2, max_dims=2)
    return [normal(rng, shape)], lambda a: a.T, lambda a: a.T


@case("expand")
def _expand(draw, rng):
    shape = list(shape_of(draw, min_dims=1))
    shape[0] = 1
    # two new leading axes, axis 0 grown from 1 to 2, the last one kept by -1
    target = (3, 2, 2, *shape[1:-1], -1) if len(shape) > 1 else (3, 2, -1)
    return [normal(rng, tuple(shape))], lambda a: a.expand(*target), lambda a: a.expand(*target)


@case("squeeze/unsqueeze")
def _squeeze(draw, rng):
    shape = (*shape_of(draw, min_dims=1, max_dims=2), 1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return (
        [normal(rng, shape)],
        lambda a: cr.unsqueeze(cr.squeeze(a, -1), axis),
        lambda a: a.squeeze(-1).unsqueeze(axis),
    )


@case("concatenate")
def _concatenate(draw, rng):
    shape = shape_of(draw, min_dims=1)
    axis = draw(st.integers(0, len(shape) - 1))
    other = list(shape)
    other[axis] = draw(st.integers(1, 3))
    torch = _torch()
    return (
        [normal(rng, shape), normal(rng, tuple(other))],
        lambda a, b: cr.concatenate([a, b], axis=axis),
        lambda a, b: torch.cat([a, b], dim=axis),
    )


@case("stack")
def _stack(draw, rng):
    shape = shape_of(draw)
    axis = draw(st.integers(0, len(shape)))
    torch = _torch()
    return (
        [normal(rng, shape), normal(rng, shape)],
        lambda a, b: cr.stack([a, b], axis=axis),
        lambda a, b: torch.stack([a, b], dim=axis),
    )


@case("pad")
def _pad(draw, rng):
    shape = shape_of(draw, min_dims=1)
    widths = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape]
    flat_torch = [w for pair in reversed(widths) for w in pair]
    F = _torch_f()
    return (
        [normal(rng, shape)],
        lambda a: cr.pad(a, widths, value=0.5),
        lambda a: F.pad(a, flat_torch, value=0.5),
    )


@case("index")
def _index(draw, rng):
    shape = shape_of(draw, min_dims=1)
    kind = draw(st.sampled_from(["slice", "int-array", "mask", "mixed"]))
    if kind == "slice":
        key = (slice(None, None, 2),) + tuple(slice(1, None) for _ in shape[1:])
    elif kind == "int-array":
        key = rng.integers(0, shape[0], size=5)  # repeats: gradients must accumulate
    elif kind == "mask":
        key = rng.random(shape) < 0.5
    else:
        key = (rng.integers(0, shape[0], size=3), Ellipsis)
    torch = _torch()

    def torch_key():
        if isinstance(key, tuple):
            return tuple(torch.as_tensor(k) if isinstance(k, np.ndarray) else k for k in key)
        return torch.as_tensor(key)

    return [normal(rng, shape)], lambda a: a[key] * 2.0, lambda a: a[torch_key()] * 2.0


# -- linear algebra ------------------------------------------------------------------------------


@case("matmul")
def _matmul(draw, rng):
    n, k, m, b = (draw(st.integers(1, 4)) for _ in range(4))
    shapes = draw(
        st.sampled_from(
            [
                ((k,), (k,)),
                ((k,), (k, m)),
                ((n, k), (k,)),
                ((n, k), (k, m)),
                ((b, n, k), (k, m)),
                ((1, n, k), (b, k, m)),
                ((k,), (b, k, m)),
                ((b, n, k), (k,)),
            ]
        )
    )
    return [normal(rng, s) for s in shapes], cr.matmul, lambda x, y: x @ y


@case("linear")
def _linear(draw, rng):
    batch = shape_of(draw, min_dims=0, max_dims=2)
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    F = _torch_f()
    return (
        [normal(rng, (*batch, n_in)), normal(rng, (n_out, n_in)), normal(rng, (n_out,))],
        cr.linear,
        F.linear,
    )


class _LazyTorch:
    """``torch`` (or an attribute path inside it) resolved only when called, so that the table
    builds, and the gradcheck runs, without PyTorch installed."""

    def __init__(self, path=()):
        self.path = path

    def __getattr__(self, name):
        return _LazyTorch((*self.path, name))

    def __call__(self, *args, **kwargs):
        import torch

        target = torch
        for name in self.path:
            target = getattr(target, name)
        return target(*args, **kwargs)


def _torch():
    return _LazyTorch()


def _torch_f():
    return _LazyTorch(("nn", "functional"))


# -- images --------------------------------------------------------------------------------------


@case("conv2d")
def _conv2d(draw, rng):
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(dilation[0] * (kh - 1) + 1, 6))
    w = draw(st.integers(dilation[1] * (kw - 1) + 1, 6))
    n = draw(st.integers(1, 2))
    F = _torch_f()
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (
        [
            normal(rng, (n, c_in, h, w)),
            normal(rng, (c_out, c_in // groups, kh, kw)),
            normal(rng, (c_out,)),
        ],
        lambda x, wt, b: cr.nn.functional.conv2d(x, wt, b, **options),
        lambda x, wt, b: F.conv2d(x, wt, b, **options),
    )


@case("conv2d-large-map")
def _conv2d_large(draw, rng):
    """Feature maps of >= 256 positions take the per-example layout."""
    groups = draw(st.sampled_from([1, 2]))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 2))
    F = _torch_f()
    options = dict(stride=stride, padding=padding, groups=groups)
    size = 32 if stride == 2 else 17
    return (
        [normal(rng, (1, 2, size, size)), normal(rng, (2, 2 // groups, 3, 3)), normal(rng, (2,))],
        lambda x, wt, b: cr.nn.functional.conv2d(x, wt, b, **options),
        lambda x, wt, b: F.conv2d(x, wt, b, **options),
    )


@case("conv2d-same")
def _conv2d_same(draw, rng):
    k = draw(st.sampled_from([2, 3, 4]))
    F = _torch_f()
    return (
        [normal(rng, (1, 2, 5, 6)), normal(rng, (3, 2, k, k))],
        lambda x, wt: cr.nn.functional.conv2d(x, wt, padding="same"),
        lambda x, wt: F.conv2d(x, wt, padding="same"),
    )


def _pool_case(name, ours, theirs, distinct=False):
    @case(name)
    def build(draw, rng):
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
        shape = (
            draw(st.integers(1, 2)),
            draw(st.integers(1, 2)),
            draw(st.integers(k[0], 6)),
            draw(st.integers(k[1], 6)),
        )
        x = (
            rng.permutation(np.prod(shape)).reshape(shape) / 10.0
            if distinct
            else normal(rng, shape)
        )
        F = _torch_f()
        return (
            [x],
            lambda t: ours(t, k, stride, padding),
            lambda t: getattr(F, theirs)(t, k, stride, padding),
        )


_pool_case("max_pool2d", lambda *a: cr.nn.functional.max_pool2d(*a), "max_pool2d", distinct=True)
_pool_case("avg_pool2d", lambda *a: cr.nn.functional.avg_pool2d(*a), "avg_pool2d")


@case("adaptive_avg_pool2d")
def _adaptive(draw, rng):
    shape = (2, 3, draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    out = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    F = _torch_f()
    return (
        [normal(rng, shape)],
        lambda t: cr.nn.functional.adaptive_avg_pool2d(t, out),
        lambda t: F.adaptive_avg_pool2d(t, out),
    )


@case("batch_norm")
def _batch_norm(draw, rng):
    shape = draw(st.sampled_from([(6, 3), (4, 3, 5), (3, 2, 4, 5)]))
    F = _torch_f()
    return (
        [normal(rng, shape) * 3 + 1, normal(rng, (shape[1],)), normal(rng, (shape[1],))],
        lambda x, w, b: cr.nn.functional.batch_norm(x, None, None, w, b, training=True),
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
    )
