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
from chainrule.ops import rnn as rnn_ops


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


def around_integers(rng, shape):
    """Values at least 0.1 away from integers and from halves (where rounding jumps)."""
    return rng.integers(-3, 3, shape) + rng.choice([0.15, 0.35, 0.65, 0.85], shape)


def above_minus_one(rng, shape):
    return rng.uniform(-0.7, 2.0, shape)


def small(rng, shape):
    return rng.uniform(-1.2, 1.2, shape)


_unary("sin", cr.sin, lambda a: a.sin())
_unary("cos", cr.cos, lambda a: a.cos())
_unary("tan", cr.tan, lambda a: a.tan(), domain=small)
_unary("log1p", cr.log1p, lambda a: a.log1p(), domain=above_minus_one)
_unary("expm1", cr.expm1, lambda a: a.expm1())
_unary("square", cr.square, lambda a: a.square())
_unary("rsqrt", cr.rsqrt, lambda a: a.rsqrt(), domain=positive)
_unary("reciprocal", cr.reciprocal, lambda a: a.reciprocal(), domain=away_from_zero)
_unary("sign", lambda a: cr.sign(a) * a, lambda a: a.sign() * a, domain=away_from_zero)
_unary("floor", lambda a: cr.floor(a) * a, lambda a: a.floor() * a, domain=around_integers)
_unary("ceil", lambda a: a.ceil() * a, lambda a: a.ceil() * a, domain=around_integers)
_unary("trunc", lambda a: a.trunc() * a, lambda a: a.trunc() * a, domain=around_integers)
_unary("round", lambda a: cr.round(a) * a, lambda a: a.round() * a, domain=around_integers)


@case("t")
def _t(draw, rng):
    return [normal(rng, shape_of(draw, max_dims=2))], cr.t, lambda a: a.t()


_unary(
    "method-chain",
    lambda a: a.mul(2.0).add(a, alpha=0.5).sub(1.0, alpha=2).div(3.0).neg().exp(),
    lambda a: a.mul(2.0).add(a, alpha=0.5).sub(1.0, alpha=2).div(3.0).neg().exp(),
)


@case("remainder")
def _remainder(draw, rng):
    sa, sb = broadcast_shapes(draw)
    b = away_from_zero(rng, sb)
    quotient = rng.integers(-3, 3, np.broadcast_shapes(sa, sb)) + rng.uniform(0.1, 0.9)
    a = np.broadcast_to(b, quotient.shape) * quotient
    return [a, b], lambda x, y: x % y, lambda x, y: x % y


@case("lerp")
def _lerp(draw, rng):
    sa, sb, sw = broadcast_shapes(draw, 3)
    return (
        [normal(rng, sa), normal(rng, sb), normal(rng, sw)],
        cr.lerp,
        lambda a, b, w: _torch().lerp(a, b, w),
    )


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
_reduction("amax", cr.amax, lambda a, d, k: a.amax(dim=d, keepdim=k))
_reduction("amin", cr.amin, lambda a, d, k: a.amin(dim=d, keepdim=k))
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


@case("prod")
def _prod(draw, rng):
    shape = shape_of(draw, min_dims=1)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keepdims = draw(st.booleans())
    x = normal(rng, shape)
    if draw(st.booleans()):
        x.flat[draw(st.integers(0, x.size - 1))] = 0.0  # a zero: no division may be used
    if axis is None:
        return [x], lambda a: cr.prod(a), lambda a: a.prod()
    return (
        [x],
        lambda a: cr.prod(a, axis, keepdim=keepdims),
        lambda a: a.prod(axis, keepdim=keepdims),
    )


@case("cumsum")
def _cumsum(draw, rng):
    shape = shape_of(draw, min_dims=1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return [normal(rng, shape)], lambda a: a.cumsum(axis), lambda a: a.cumsum(axis)


@case("std")
def _std(draw, rng):
    shape = shape_of(draw, min_dims=1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    correction = draw(st.sampled_from([0, 1])) if shape[axis] > 1 else 0
    x = normal(rng, shape) if shape[axis] > 1 else np.full(shape, 0.5)  # std 0: gradient 0
    return (
        [x],
        lambda a: cr.std(a, dim=axis, correction=correction),
        lambda a: a.std(dim=axis, correction=correction),
    )


@case("var-default-correction")
def _var_default(draw, rng):
    shape = (*shape_of(draw, min_dims=0, max_dims=2), draw(st.integers(2, 4)))
    return [normal(rng, shape)], lambda a: a.var(-1), lambda a: a.var(-1)


@case("norm")
def _norm(draw, rng):
    shape = shape_of(draw, min_dims=1)
    p = draw(st.sampled_from([1, 2, 3, "fro", float("inf")]))
    dim = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keepdim = draw(st.booleans())
    # distinct magnitudes away from 0, so |x| and its largest value are differentiable
    x = away_from_zero(rng, shape) * (
        1 + 0.01 * rng.permutation(int(np.prod(shape))).reshape(shape)
    )
    return (
        [x],
        lambda a: a.norm(p, dim, keepdim),
        lambda a: a.norm(p, dim, keepdim),
    )


def distinct(rng, shape):
    """Values that are all different (so a largest value is unique)."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 4.0 + rng.uniform(0, 0.1)


@case("max-all")
def _max_all(draw, rng):
    return [normal(rng, shape_of(draw))], lambda a: cr.max(a) * 2, lambda a: _torch().max(a) * 2


@case("max/min-dim")
def _max_dim(draw, rng):
    shape = shape_of(draw, min_dims=1)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = draw(st.booleans())
    which = draw(st.sampled_from(["max", "min"]))
    x = distinct(rng, shape)  # ties (the first one gets the gradient): tests/test_ops_surface.py

    def ours(a):
        values, indices = getattr(a, which)(dim, keepdim=keepdim)
        return values * (indices + 1)

    def theirs(a):
        values, indices = getattr(a, which)(dim, keepdim=keepdim)
        return values * (indices + 1)

    return [x], ours, theirs


@case("sort")
def _sort(draw, rng):
    shape = shape_of(draw, min_dims=1)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    descending = draw(st.booleans())
    x = distinct(rng, shape)
    return (
        [x],
        lambda a: (
            cr.sort(a, dim, descending).values
            * np.arange(1, shape[dim] + 1).reshape(
                (-1,) + (1,) * (len(shape) - 1 - dim % len(shape))
            )
        ),
        lambda a: (
            _torch().sort(a, dim, descending).values
            * _torch()
            .arange(1, shape[dim] + 1, dtype=a.dtype)
            .reshape((-1,) + (1,) * (len(shape) - 1 - dim % len(shape)))
        ),
    )


@case("topk")
def _topk(draw, rng):
    shape = shape_of(draw, min_dims=1)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    k = draw(st.integers(1, shape[dim]))
    largest = draw(st.booleans())
    return (
        [distinct(rng, shape)],
        lambda a: a.topk(k, dim, largest).values.exp(),
        lambda a: a.topk(k, dim, largest).values.exp(),
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


@case("mT")
def _mT(draw, rng):
    shape = shape_of(draw, min_dims=2)
    return [normal(rng, shape)], lambda a: a.mT, lambda a: a.mT


@case("view_as/expand_as")
def _view_as(draw, rng):
    shape = shape_of(draw, min_dims=1)
    flat = np.zeros((int(np.prod(shape)),))
    wide = np.zeros((2, *shape))
    return (
        [normal(rng, shape)],
        lambda a: a.view_as(cr.tensor(flat)) * 2 + a.expand_as(cr.tensor(wide)).sum(),
        lambda a: a.view_as(_torch().tensor(flat)) * 2 + a.expand_as(_torch().tensor(wide)).sum(),
    )


@case("repeat")
def _repeat(draw, rng):
    shape = shape_of(draw, max_dims=2)
    repeats = tuple(
        draw(st.integers(1, 3)) for _ in range(max(len(shape), 1) + draw(st.integers(0, 1)))
    )
    return [normal(rng, shape)], lambda a: a.repeat(*repeats), lambda a: a.repeat(*repeats)


@case("flip")
def _flip(draw, rng):
    shape = shape_of(draw, min_dims=1)
    dims = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
    return [normal(rng, shape)], lambda a: a.flip(dims) * a, lambda a: a.flip(dims) * a


@case("roll")
def _roll(draw, rng):
    shape = shape_of(draw)
    if not shape or draw(st.booleans()):  # along the flattened tensor
        shifts, dims = draw(st.integers(-7, 7)), None
    else:
        dims = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3))
        shifts = [draw(st.integers(-5, 5)) for _ in dims]
    return (
        [normal(rng, shape)],
        lambda a: a.roll(shifts, dims) * a,
        lambda a: a.roll(shifts, dims) * a,
    )


@case("movedim")
def _movedim(draw, rng):
    shape = shape_of(draw, min_dims=1)
    src = draw(st.integers(-len(shape), len(shape) - 1))
    dst = draw(st.integers(-len(shape), len(shape) - 1))
    return [normal(rng, shape)], lambda a: a.movedim(src, dst), lambda a: a.movedim(src, dst)


@case("chunk/split/unbind")
def _pieces(draw, rng):
    shape = shape_of(draw, min_dims=1)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    how = draw(st.sampled_from(["chunk", "split", "split-sizes", "unbind"]))
    n = draw(st.integers(1, 3))
    length = shape[dim]
    sizes = [length // 2, length - length // 2]

    def pieces(a):
        if how == "chunk":
            return a.chunk(n, dim)
        if how == "split":
            return a.split(n, dim)
        if how == "split-sizes":
            return a.split(sizes, dim)
        return [p.unsqueeze(dim) for p in a.unbind(dim)]

    def joined(a, cat):
        return cat([p * (i + 1) for i, p in enumerate(pieces(a))], dim)

    return [normal(rng, shape)], lambda a: joined(a, cr.cat), lambda a: joined(a, _torch().cat)


@case("narrow/select")
def _narrow(draw, rng):
    shape = shape_of(draw, min_dims=1)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    start = draw(st.integers(0, shape[dim] - 1))
    length = draw(st.integers(0, shape[dim] - start))
    return (
        [normal(rng, shape)],
        lambda a: a.narrow(dim, start, length).sum() + a.select(dim, start) * 2,
        lambda a: a.narrow(dim, start, length).sum() + a.select(dim, start) * 2,
    )


@case("gather")
def _gather(draw, rng):
    shape = shape_of(draw, min_dims=1)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    index_shape = tuple(
        draw(st.integers(1, 5)) if d == dim % len(shape) else draw(st.integers(1, n))
        for d, n in enumerate(shape)
    )
    index = rng.integers(0, shape[dim], index_shape)  # repeats: gradients must add up
    return (
        [normal(rng, shape)],
        lambda a: cr.gather(a, dim, cr.tensor(index)),
        lambda a: _torch().gather(a, dim, _torch().tensor(index)),
    )


@case("index_select")
def _index_select(draw, rng):
    shape = shape_of(draw, min_dims=1)
    dim = draw(st.integers(0, len(shape) - 1))
    index = rng.integers(0, shape[dim], draw(st.integers(1, 5)))
    return (
        [normal(rng, shape)],
        lambda a: a.index_select(dim, cr.tensor(index)),
        lambda a: a.index_select(dim, _torch().tensor(index)),
    )


@case("masked_fill/masked_select")
def _masked(draw, rng):
    shape = shape_of(draw, min_dims=1)
    mask = rng.random(shape[draw(st.integers(0, len(shape) - 1)) :]) < 0.5
    return (
        [normal(rng, shape)],
        lambda a: a.masked_fill(cr.tensor(mask), -1.5) * a + a.masked_select(cr.tensor(mask)).sum(),
        lambda a: (
            a.masked_fill(_torch().tensor(mask), -1.5) * a
            + a.masked_select(_torch().tensor(mask)).sum()
        ),
    )


@case("tril/triu")
def _triangles(draw, rng):
    shape = shape_of(draw, min_dims=2)
    k = draw(st.integers(-2, 2))
    return (
        [normal(rng, shape)],
        lambda a: a.tril(k) * 2 + cr.triu(a, k),
        lambda a: a.tril(k) * 2 + _torch().triu(a, k),
    )


@case("scaled_dot_product_attention")
def _attention(draw, rng):
    """The fused attention op: broadcast batch axes, float (differentiable), boolean and causal
    masks (a query whose keys are all masked gives 0), the default and a given scale."""
    batch = draw(array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    queries, keys, e, ev = (draw(st.integers(1, 4)) for _ in range(4))
    kind = draw(st.sampled_from(["none", "float", "bool", "causal"]))
    scale = draw(st.sampled_from([None, 0.5]))
    arrays = [normal(rng, (*batch, n, d)) for n, d in ((queries, e), (keys, e), (keys, ev))]
    ours, theirs = cr.nn.functional.scaled_dot_product_attention, _torch_f()
    if kind == "float":
        arrays.append(normal(rng, (queries, keys)))
        return (
            arrays,
            lambda q, k, v, m: ours(q, k, v, m, scale=scale),
            lambda q, k, v, m: theirs.scaled_dot_product_attention(q, k, v, m, scale=scale),
        )
    mask = rng.random((queries, keys)) < 0.7 if kind == "bool" else None
    causal = kind == "causal"
    return (
        arrays,
        lambda q, k, v: ours(q, k, v, mask, is_causal=causal, scale=scale),
        lambda q, k, v: theirs.scaled_dot_product_attention(
            q, k, v, None if mask is None else _torch().tensor(mask), is_causal=causal, scale=scale
        ),
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


@case("mm/bmm/mv/dot/outer")
def _products(draw, rng):
    n, k, m, b = (draw(st.integers(1, 4)) for _ in range(4))
    which = draw(st.sampled_from(["mm", "bmm", "mv", "dot", "outer"]))
    shapes = {
        "mm": [(n, k), (k, m)],
        "bmm": [(b, n, k), (b, k, m)],
        "mv": [(n, k), (k,)],
        "dot": [(k,), (k,)],
        "outer": [(n,), (m,)],
    }[which]
    return (
        [normal(rng, s) for s in shapes],
        lambda x, y: getattr(cr, which)(x, y),
        lambda x, y: getattr(_torch(), which)(x, y),
    )


@case("matmul-keywords")
def _matmul_keywords(draw, rng):
    return (
        [normal(rng, (2, 3)), normal(rng, (3, 2))],
        lambda x, y: cr.matmul(input=x, other=y),
        lambda x, y: _torch().matmul(input=x, other=y),
    )


@case("einsum")
def _einsum(draw, rng):
    i, j, k, b = (draw(st.integers(1, 4)) for _ in range(4))
    equation, shapes = draw(
        st.sampled_from(
            [
                ("ij,jk->ik", [(i, j), (j, k)]),
                ("bij,bjk->bik", [(b, i, j), (b, j, k)]),
                ("ij,jk", [(i, j), (j, k)]),
                ("ij->", [(i, j)]),
                ("ij->j", [(i, j)]),
                ("ij->ji", [(i, j)]),
                ("ii->i", [(i, i)]),
                ("ii", [(i, i)]),
                ("i,i->", [(i,), (i,)]),
                ("i,j->ij", [(i,), (j,)]),
                ("bid,bjd->bij", [(b, i, k), (b, j, k)]),
                ("...ij,...jk->...ik", [(b, i, j), (j, k)]),
                ("ij,jk,kl->il", [(i, j), (j, k), (k, 2)]),
                ("ij,ij->ij", [(1, j), (i, j)]),
            ]
        )
    )

    def ours(*xs):
        return cr.einsum(equation, *xs)

    def theirs(*xs):
        return _torch().einsum(equation, *xs)

    return [normal(rng, s) for s in shapes], ours, theirs


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


@case("conv_transpose2d")
def _conv_transpose2d(draw, rng):
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = tuple(draw(st.integers(0, (d * (k - 1)) // 2)) for k, d in zip(kernel, dilation))
    shape = (draw(st.integers(1, 2)), c_in, draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    F = _torch_f()
    options = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    return (
        [
            normal(rng, shape),
            normal(rng, (c_in, c_out // groups, *kernel)),
            normal(rng, (c_out,)),
        ],
        lambda x, wt, b: cr.nn.functional.conv_transpose2d(x, wt, b, **options),
        lambda x, wt, b: F.conv_transpose2d(x, wt, b, **options),
    )


@case("conv_transpose1d")
def _conv_transpose1d(draw, rng):
    k, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    options = dict(stride=stride, padding=draw(st.integers(0, (k - 1) // 2)))
    options["output_padding"] = draw(st.integers(0, stride - 1))
    F = _torch_f()
    return (
        [normal(rng, (2, 3, draw(st.integers(1, 5)))), normal(rng, (3, 2, k))],
        lambda x, wt: cr.nn.functional.conv_transpose1d(x, wt, **options),
        lambda x, wt: F.conv_transpose1d(x, wt, **options),
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


@case("layer_norm")
def _layer_norm(draw, rng):
    normalized = draw(st.sampled_from([(2,), (4,), (2, 3)]))
    shape = (*shape_of(draw, max_dims=2), *normalized)
    affine = draw(st.sampled_from(["weight and bias", "weight", "none"]))
    F = _torch_f()
    params = [
        normal(rng, normalized) for _ in range({"weight and bias": 2, "weight": 1}.get(affine, 0))
    ]
    return (
        [normal(rng, shape) * 3 + 1, *params],
        lambda x, *wb: cr.nn.functional.layer_norm(x, normalized, *wb),
        lambda x, *wb: F.layer_norm(x, normalized, *wb),
    )


# -- recurrent layers: one layer in one direction over a whole sequence ---------------------------


def _recurrence_case(name, op, gates, torch_name, **options):
    """A case for a sequence op of :mod:`chainrule.ops.rnn` (random sizes, either direction),
    against PyTorch's function for a one-layer network (the reverse direction as the forward
    one over the time-reversed sequence)."""

    @case(name)
    def build(draw, rng):
        steps, batch, inputs, size = (draw(st.integers(1, 3)) for _ in range(4))
        reverse = draw(st.booleans())
        states = 2 if torch_name == "lstm" else 1
        arrays = [normal(rng, (steps, batch, inputs))]
        arrays += [normal(rng, (batch, size)) for _ in range(states)]
        arrays += [normal(rng, (gates * size, inputs)), normal(rng, (gates * size, size))]
        arrays += [normal(rng, (gates * size,)) for _ in range(2)]

        def ours(x, *rest):
            return op.apply(x, *rest, reverse=reverse, **options)

        def theirs(x, *rest):
            hx = tuple(h[None] for h in rest[:states])
            x = x.flip(0) if reverse else x
            result = getattr(_torch(), torch_name)(
                x,
                hx if states == 2 else hx[0],
                list(rest[states:]),
                True,
                1,
                0.0,
                False,
                False,
                False,
            )
            hs = result[0].flip(0) if reverse else result[0]
            return _torch().cat([hs, result[2]]) if states == 2 else hs

        return arrays, ours, theirs

    return build


_recurrence_case("rnn_tanh sequence", rnn_ops.ElmanSequence, 1, "rnn_tanh")
_recurrence_case("rnn_relu sequence", rnn_ops.ElmanSequence, 1, "rnn_relu", relu=True)
_recurrence_case("lstm sequence", rnn_ops.LSTMSequence, 4, "lstm")
_recurrence_case("gru sequence", rnn_ops.GRUSequence, 3, "gru")


@case("lstm sequence with projections")
def _projected_lstm(draw, rng):
    """The op's h_t of every step and its last c_t (every c_t is checked in test_rnn_proj.py)
    against PyTorch's projected LSTM, either direction."""
    steps, batch, inputs = (draw(st.integers(1, 3)) for _ in range(3))
    size = draw(st.integers(2, 4))
    width = draw(st.integers(1, size - 1))  # proj_size
    reverse = draw(st.booleans())
    last = 0 if reverse else -1
    arrays = [normal(rng, shape) for shape in [(steps, batch, inputs), (batch, width)]]
    arrays += [normal(rng, shape) for shape in [(batch, size), (4 * size, inputs)]]
    arrays += [normal(rng, shape) for shape in [(4 * size, width), (4 * size,), (4 * size,)]]
    arrays.append(normal(rng, (width, size)))

    def ours(*tensors):
        out = rnn_ops.ProjectedLSTMSequence.apply(*tensors, reverse=reverse)
        return cr.cat([out[..., :width].reshape(-1), out[last, :, width:].reshape(-1)])

    def theirs(x, h0, c0, *weights):
        x = x.flip(0) if reverse else x
        hs, _, c = _torch().lstm(
            x, (h0[None], c0[None]), list(weights), True, 1, 0.0, False, False, False
        )
        hs = hs.flip(0) if reverse else hs
        return _torch().cat([hs.reshape(-1), c.reshape(-1)])

    return arrays, ours, theirs
