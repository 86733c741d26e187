"""The function/method surface against PyTorch: keyword names, return types, integer dtypes,
ties, defaults and errors (the gradients of every differentiable op are in op_table.py)."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 4))
Y = RNG.normal(size=(3, 4))
INDEX = np.array([[0, 3], [1, 1], [2, 0]])


def both(fn):
    """fn(lib, tensor_maker) on PyTorch and on chainrule, results as NumPy values."""
    return [_values(fn(lib)) for lib in (torch, cr)]


def _values(result):
    if isinstance(result, tuple):
        return tuple(_values(r) for r in result)
    if isinstance(result, (torch.Tensor, cr.Tensor)):
        return np.asarray(result.detach().numpy() if isinstance(result, torch.Tensor) else result)
    return result


def assert_same(pair):
    theirs, ours = pair
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same((b, a))
        return
    if isinstance(theirs, np.ndarray):
        assert ours.shape == theirs.shape and ours.dtype.kind == theirs.dtype.kind
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    else:
        assert ours == theirs


KEYWORD_CALLS = {
    "matmul": lambda t: t.matmul(input=t.tensor(X), other=t.tensor(Y).T),
    "mm": lambda t: t.mm(input=t.tensor(X), mat2=t.tensor(Y).T),
    "clamp": lambda t: t.clamp(input=t.tensor(X), min=-0.5, max=0.5),
    "where": lambda t: t.where(condition=t.tensor(X > 0), input=t.tensor(X), other=t.tensor(Y)),
    "pow": lambda t: t.pow(input=t.tensor(np.abs(X)), exponent=1.5),
    "maximum": lambda t: t.maximum(input=t.tensor(X), other=t.tensor(Y)),
    "gather": lambda t: t.gather(input=t.tensor(X), dim=1, index=t.tensor(INDEX)),
    "sum": lambda t: t.sum(t.tensor(X), dim=1, keepdim=True, dtype=t.float32),
    "mean": lambda t: t.mean(t.tensor(X), dim=(0, 1), keepdim=True),
    "prod": lambda t: t.prod(t.tensor(X), dim=0, keepdim=True),
    "cumsum": lambda t: t.cumsum(t.tensor(X), dim=1),
    "var": lambda t: t.var(t.tensor(X), dim=1),
    "var-correction": lambda t: t.var(t.tensor(X), dim=0, correction=0, keepdim=True),
    "var-unbiased": lambda t: t.tensor(X).var(1, False),
    "std": lambda t: t.std(t.tensor(X)),
    "norm": lambda t: t.norm(t.tensor(X), p=3, dim=1, keepdim=True),
    "topk": lambda t: tuple(t.topk(t.tensor(X), k=2, dim=0, largest=False, sorted=True)),
    "sort": lambda t: tuple(t.sort(t.tensor(X), dim=0, descending=True, stable=True)),
    "argsort": lambda t: t.argsort(t.tensor(X), dim=1, descending=True),
    "max-dim": lambda t: tuple(t.max(t.tensor(X), dim=1, keepdim=True)),
    "min-dim": lambda t: tuple(t.tensor(X).min(0)),
    "max-all": lambda t: t.max(t.tensor(X)),
    "max-other": lambda t: t.max(t.tensor(X), t.tensor(Y)),
    "argmax": lambda t: t.argmax(t.tensor(X), dim=1, keepdim=True),
    "argmin-all": lambda t: t.tensor(X).argmin(),
    "all": lambda t: t.all(t.tensor(X > -1), dim=0),
    "any": lambda t: t.tensor(X > 1).any(),
    "chunk": lambda t: t.chunk(t.tensor(X), chunks=3, dim=1),
    "split": lambda t: t.split(t.tensor(X), split_size_or_sections=[1, 3], dim=1),
    "unbind": lambda t: t.unbind(t.tensor(X), dim=1),
    "narrow": lambda t: t.narrow(t.tensor(X), dim=1, start=-3, length=2),
    "flip": lambda t: t.flip(t.tensor(X), dims=(0, 1)),
    "flip-method": lambda t: t.tensor(X).flip(1),
    "permute": lambda t: t.permute(t.tensor(X).reshape(3, 2, 2), dims=(2, 0, 1)),
    "reshape": lambda t: t.reshape(t.tensor(X), shape=(2, -1)),
    "repeat": lambda t: t.tensor(X).repeat(2, 1, 2),
    "expand": lambda t: t.tensor(X[:1]).expand(2, -1, 4),
    "t": lambda t: t.t(t.tensor(X)),
    "mT": lambda t: t.tensor(X).reshape(2, 2, 3).mT,
    "einsum-implicit": lambda t: t.einsum("ij,kj", t.tensor(X), t.tensor(Y)),
    "einsum-ellipsis": lambda t: t.einsum("...j,...j->...", t.tensor(X), t.tensor(Y)),
    "einsum-list": lambda t: t.einsum("ii->i", [t.tensor(X[:, :3])]),
    "bmm": lambda t: t.bmm(t.tensor(X).reshape(1, 3, 4), t.tensor(Y).reshape(1, 4, 3)),
    "masked_fill": lambda t: t.tensor(X).masked_fill(t.tensor(X > 0), -1.0),
    "tril": lambda t: t.tril(t.tensor(X), diagonal=-1),
    "triu": lambda t: t.tensor(X).triu(1),
    "eq": lambda t: t.eq(t.tensor(X), 0.5),
    "ge": lambda t: t.tensor(X).ge(t.tensor(Y)),
    "isclose": lambda t: t.isclose(t.tensor(X), t.tensor(X + 1e-9), rtol=0, atol=1e-8),
    "allclose": lambda t: t.allclose(t.tensor(X), t.tensor(X) * (1 + 1e-6)),
    "equal": lambda t: t.equal(t.tensor(X), t.tensor(X)),
    "isnan": lambda t: t.isnan(t.tensor([0.0, np.nan, np.inf])),
    "isinf": lambda t: t.tensor([0.0, np.nan, -np.inf]).isinf(),
    "isfinite": lambda t: t.isfinite(t.tensor([0.0, np.nan, np.inf])),
    "logical": lambda t: t.logical_and(t.tensor(X > 0), ~t.tensor(Y > 0)) | t.tensor(X > 1),
    "sign": lambda t: t.sign(t.tensor(np.round(X))),
    "round-decimals": lambda t: t.round(t.tensor(X), decimals=2),
    "floor-int": lambda t: t.floor(t.tensor([1, -2, 3])),
    "div-floor": lambda t: t.div(t.tensor([7, -7]), 2, rounding_mode="floor"),
    "div-trunc": lambda t: t.div(t.tensor([7.5, -7.5]), 2, rounding_mode="trunc"),
    "remainder-int": lambda t: t.tensor([7, -7]) % 3,
    "floor_divide": lambda t: t.tensor([7.0, -7.0]) // 2,
    "sum-int": lambda t: t.tensor([[1, 2], [3, 4]], dtype=t.int32).sum(0),
    "sum-bool": lambda t: (t.tensor(X) > 0).sum(),
    "prod-int": lambda t: t.tensor([1, 2, 3], dtype=t.int32).prod(),
    "cumsum-int": lambda t: t.tensor([1, 2, 3], dtype=t.int32).cumsum(0),
    "nonzero": lambda t: t.nonzero(t.tensor(X > 0.5)),
    "index_select": lambda t: t.index_select(t.tensor(X), 1, t.tensor([3, 0, 3])),
    "masked_select": lambda t: t.masked_select(t.tensor(X), t.tensor(X > 0)),
    "one_hot": lambda t: t.nn.functional.one_hot(t.tensor([[0, 2], [1, 0]])),
    "add-alpha": lambda t: t.add(t.tensor(X), t.tensor(Y), alpha=-2),
    "new_zeros": lambda t: t.tensor(X, dtype=t.float32).new_zeros((2, 3)),
    "new_full": lambda t: t.tensor([1, 2]).new_full((2,), 7),
    "softmax-dtype": lambda t: t.softmax(t.tensor(X, dtype=t.float32), dim=0, dtype=t.float64),
    "tolist": lambda t: t.tensor(X).tolist(),
}


@pytest.mark.parametrize("name", KEYWORD_CALLS)
def test_call_gives_pytorchs_result(name):
    assert_same(both(KEYWORD_CALLS[name]))


def test_results_have_pytorchs_types():
    x = cr.tensor(X)
    result = x.max(dim=1)
    assert type(result).__name__ == "max" and result._fields == ("values", "indices")
    assert result.indices.dtype == np.int64 and isinstance(result.values, cr.Tensor)
    assert type(cr.sort(x)).__name__ == "sort" and type(cr.topk(x, 1)).__name__ == "topk"
    assert isinstance(x.max(), cr.Tensor) and x.max().shape == ()
    assert isinstance(cr.allclose(x, x), bool) and isinstance(cr.equal(x, x), bool)
    assert isinstance(x.chunk(2), tuple) and isinstance(cr.split(x, 2), tuple)
    assert x.t().shape == (4, 3) and cr.tensor([1.0, 2.0]).t().shape == (2,)


def test_ties_go_where_pytorchs_do():
    """max/min along a dim send the gradient to the first largest value; sort keeps equal values
    in their order; max over everything shares the gradient between ties. (topk's choice among
    ties is unspecified in PyTorch; ours takes the first.)"""
    values = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 0.0, 2.0]])
    upstream = RNG.normal(size=(2, 2))
    for make_loss in (
        lambda t, lib: (lib.max(t, 1).values * lib.tensor([1.0, 2.0])).sum(),
        lambda t, lib: t.min(dim=1, keepdim=True).values.sum(),
        lambda t, lib: t.max(),
        lambda t, lib: (
            lib.sort(t, dim=1, descending=True).values[:, :2] * lib.tensor(upstream)
        ).sum(),
    ):
        grads = []
        for lib in (torch, cr):
            t = lib.tensor(values, requires_grad=True)
            make_loss(t, lib).backward()
            grads.append(np.asarray(t.grad))
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)
    indices = [lib.argsort(lib.tensor(values), dim=1, descending=True) for lib in (torch, cr)]
    np.testing.assert_array_equal(indices[1].numpy(), indices[0].numpy())


def test_var_and_std_default_to_the_unbiased_estimate():
    x = cr.tensor(X)
    np.testing.assert_allclose(x.var().item(), X.var(ddof=1))
    np.testing.assert_allclose(cr.std(x, dim=0).numpy(), X.std(axis=0, ddof=1))
    np.testing.assert_allclose(x.var(axis=1, ddof=0).numpy(), X.var(axis=1))  # NumPy's spelling
    with pytest.raises(TypeError, match="one of correction"):
        x.var(correction=0, ddof=0)
    flat = cr.tensor([2.0, 2.0, 2.0], requires_grad=True)
    flat.std().backward()  # std 0: PyTorch's gradient is 0, not NaN
    assert flat.grad.tolist() == [0.0, 0.0, 0.0]


def test_errors_name_the_problem():
    x = cr.tensor(X)
    with pytest.raises(TypeError, match=r"amax"):
        x.max(dim=(0, 1))
    with pytest.raises(IndexError, match=r"gather: index values must be in \[0, 4\)"):
        cr.gather(x, 1, cr.tensor([[4]]))
    with pytest.raises(RuntimeError, match=r"topk: k=5"):
        x.topk(5)
    with pytest.raises(ValueError, match="mm expects two 2-D tensors"):
        cr.mm(x.reshape(1, 3, 4), x)
    with pytest.raises(ValueError, match="bmm: batch sizes differ"):
        cr.bmm(cr.zeros(2, 3, 4), cr.zeros(3, 4, 5))
    with pytest.raises(RuntimeError, match="mean.*dtype int64.*float"):
        cr.tensor([1, 2]).mean()
    with pytest.raises(RuntimeError, match="repeat: 1 repeat counts"):
        x.repeat(2)
    with pytest.raises(ValueError, match="split: sizes"):
        x.split([1, 1], dim=1)
    with pytest.raises(RuntimeError, match="masked_fill: mask of shape"):
        x.masked_fill(cr.tensor([True, False]), 0.0)
    with pytest.raises(RuntimeError, match="one_hot: class values must be smaller"):
        F.one_hot(cr.tensor([0, 3]), num_classes=3)
    with pytest.raises(ValueError, match="einsum"):
        cr.einsum("ij,jk->ik", x)
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        cr.tensor(X, requires_grad=True).numpy()


def test_out_writes_into_the_given_tensor():
    a, b = cr.tensor(X), cr.tensor(Y)
    out = cr.zeros(3, 3, dtype=cr.float64)
    version = out._version
    assert cr.matmul(a, b.T, out=out) is out and out._version == version + 1
    np.testing.assert_allclose(out.numpy(), X @ Y.T)
    with pytest.raises(RuntimeError, match="out=.*don't support automatic differentiation"):
        cr.mul(cr.tensor(X, requires_grad=True), b, out=cr.zeros(3, 4, dtype=cr.float64))


def test_nn_init_matches_pytorchs_formulas():
    for nonlinearity in ("linear", "sigmoid", "tanh", "relu", "selu", "conv_transpose2d"):
        assert cr.nn.init.calculate_gain(nonlinearity) == torch.nn.init.calculate_gain(nonlinearity)
    assert cr.nn.init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain(
        "leaky_relu", 0.2
    )
    for fill in ("eye_", "dirac_"):
        shape = (3, 5) if fill == "eye_" else (4, 2, 3, 3)
        ours, theirs = cr.zeros(*shape), torch.zeros(*shape)
        getattr(cr.nn.init, fill)(ours)
        getattr(torch.nn.init, fill)(theirs)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    w = cr.nn.Parameter(cr.zeros(4, 6))
    before = w._version
    cr.nn.init.orthogonal_(w, gain=2.0, generator=cr.Generator().manual_seed(1))
    np.testing.assert_allclose(w.detach().numpy() @ w.detach().numpy().T, 4 * np.eye(4), atol=1e-5)
    assert w._version > before  # an in-place change, as PyTorch counts it
    again = cr.nn.init.orthogonal_(cr.zeros(4, 6), 2.0, cr.Generator().manual_seed(1))
    np.testing.assert_array_equal(again.detach().numpy(), w.detach().numpy())
    big = cr.nn.init.trunc_normal_(cr.zeros(2000), std=1.0, a=-0.5, b=1.0)
    assert big.min().item() >= -0.5 and big.max().item() <= 1.0
    sparse = cr.nn.init.sparse_(cr.zeros(10, 40), sparsity=0.3)
    assert ((sparse.numpy() == 0).sum(axis=0) >= 3).all()
    fan_in, fan_out = cr.nn.init._calculate_fan_in_and_fan_out(cr.zeros(8, 3, 5, 5))
    assert (fan_in, fan_out) == (75, 200)
