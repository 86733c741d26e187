"""nn containers (ModuleList, ModuleDict, ParameterList, ParameterDict) and Embedding, against
PyTorch where it is installed."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")


def build(lib):
    """The same custom module written once for either library (only the import differs)."""

    class Tower(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = lib.nn.ModuleList([lib.nn.Linear(4, 4) for _ in range(2)])
            self.blocks.append(lib.nn.BatchNorm1d(4))
            self.heads = lib.nn.ModuleDict({"cls": lib.nn.Linear(4, 3), "reg": lib.nn.Linear(4, 1)})
            self.scales = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(4)) for _ in range(2)])
            self.extra = lib.nn.ParameterDict({"shift": lib.nn.Parameter(lib.zeros(4))})
            self.branches = lib.nn.ModuleDict({"a": lib.nn.ModuleList([lib.nn.Tanh()])})

        def forward(self, x):
            for block, scale in zip(self.blocks, self.scales):
                x = block(x).relu() * scale
            x = self.blocks[2](x) + self.extra["shift"]
            x = self.branches["a"][0](x)
            return self.heads["cls"](x), self.heads.reg(x)

    return Tower()


# -- containers --------------------------------------------------------------------------------------


@pytest.mark.torch
def test_a_module_with_containers_has_pytorch_names_and_outputs(torch):
    ours, theirs = build(cr), build(torch).double()
    ours.double()
    # the same names (PyTorch lists each module's buffers right after its parameters; we list
    # all parameters first: loading goes by name, so both orders load either's files)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4))
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        assert ours.blocks[2].training == theirs.blocks[2].training == (mode == "train")
        # atol: BLAS builds round matmuls differently; an output that cancels to 1e-5 would
        # otherwise fail a purely relative bound on a 1e-17 difference
        for a, b in zip(ours(cr.tensor(x)), theirs(torch.tensor(x))):
            np.testing.assert_allclose(
                a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12
            )
    (ours(cr.tensor(x))[0].sum() + ours(cr.tensor(x))[1].sum()).backward()
    assert all(p.grad is not None for p in ours.parameters())
    assert len(list(ours.parameters())) == len(list(theirs.parameters())) == 13


@pytest.mark.torch
def test_module_list_methods_match_pytorch(torch):
    def edit(lib):
        layers = lib.nn.ModuleList([lib.nn.Linear(1, i + 1) for i in range(3)])
        layers.insert(1, lib.nn.Linear(1, 7))
        layers.extend([lib.nn.Linear(1, 8)])
        layers += [lib.nn.Linear(1, 9)]
        del layers[0]
        popped = layers.pop(2)
        layers[0] = lib.nn.Linear(1, 5)
        both = layers + lib.nn.ModuleList([lib.nn.ReLU()])
        sizes = [getattr(m, "out_features", 0) for m in layers]
        return (
            sizes,
            popped.out_features,
            len(both),
            [len(layers[1:]), len(layers[::2])],
            [k for k in layers.state_dict()],
        )

    assert edit(cr) == edit(torch)
    layers = nn.ModuleList([nn.ReLU()])
    assert isinstance(layers[0:], nn.ModuleList) and layers[-1] is layers[0]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        layers[3]
    with pytest.raises(TypeError, match="int is not a Module"):
        layers.append(3)
    with pytest.raises(NotImplementedError, match="forward"):
        layers(cr.zeros(1))


@pytest.mark.torch
def test_module_dict_methods_match_pytorch(torch):
    def edit(lib):
        d = lib.nn.ModuleDict({"b": lib.nn.Linear(1, 2)})
        d.update([("a", lib.nn.Linear(1, 3))])
        d.update({"c": lib.nn.Linear(1, 4)})
        d["b"] = lib.nn.Linear(1, 5)
        popped = d.pop("c")
        return (
            list(d.keys()),
            [m.out_features for m in d.values()],
            [k for k, _ in d.items()],
            "a" in d,
            len(d),
            list(d),
            popped.out_features,
            d.a.out_features,
            list(d.state_dict()),
        )

    assert edit(cr) == edit(torch)
    d = nn.ModuleDict()
    d.clear()
    assert len(d) == 0


@pytest.mark.torch
@pytest.mark.parametrize(
    "key, value, error",
    [
        (1, "layer", TypeError),
        ("a.b", "layer", KeyError),
        ("", "layer", KeyError),
        ("train", "layer", KeyError),
        ("ok", 3, TypeError),
    ],
)
def test_module_dict_refuses_what_pytorch_refuses(torch, key, value, error):
    for lib in (torch, cr):
        d = lib.nn.ModuleDict()
        with pytest.raises(error):
            d[key] = lib.nn.ReLU() if value == "layer" else value
    with pytest.raises(ValueError, match="pair"):
        nn.ModuleDict([("a", nn.ReLU(), "extra")])
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = nn.ModuleDict().missing


@pytest.mark.torch
def test_parameter_containers_make_tensors_parameters_like_pytorch(torch):
    def build_params(lib):
        plist = lib.nn.ParameterList([lib.ones(2), lib.nn.Parameter(lib.zeros(3))])
        plist.append(lib.ones(4))
        pdict = lib.nn.ParameterDict({"w": lib.ones(2)})
        pdict.update({"v": lib.zeros(1)})
        holder = lib.nn.Module()
        holder.plist, holder.pdict = plist, pdict
        kinds = [isinstance(p, lib.nn.Parameter) for p in [*plist, *pdict.values()]]
        return kinds, list(holder.state_dict()), [p.shape[0] for p in holder.parameters()]

    ours, theirs = build_params(cr), build_params(torch)
    assert ours[0] == theirs[0] == [True] * 5
    assert ours[1:] == (theirs[1], [int(s) for s in theirs[2]])
    plist = nn.ParameterList([cr.ones(2)])
    opt = cr.optim.SGD(plist.parameters(), lr=0.5)
    (plist[0] * 3).sum().backward()
    opt.step()
    np.testing.assert_allclose(plist[0].detach().numpy(), [-0.5, -0.5])
    assert "(0): Parameter containing: [float32 of shape (2,)]" in repr(plist)
    pdict = nn.ParameterDict({"a": cr.ones(1)})
    assert pdict.get("b") is None and pdict.setdefault("b", cr.zeros(2)).shape == (2,)
    assert list(pdict.copy()) == ["a", "b"] and "(b): Parameter" in repr(pdict)


def test_containers_survive_dtype_changes_and_deep_copies():
    import copy

    model = nn.Module()
    model.layers = nn.ModuleList([nn.Linear(2, 2)])
    model.table = nn.ModuleDict({"e": nn.Embedding(3, 2)})
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    clone = copy.deepcopy(model)
    assert clone.table.e is not model.table.e
    assert list(clone.state_dict()) == ["layers.0.weight", "layers.0.bias", "table.e.weight"]


# -- Embedding ---------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize(
    "options",
    [{}, {"padding_idx": 2}, {"padding_idx": -1}, {"scale_grad_by_freq": True, "padding_idx": 0}],
)
def test_embedding_forward_and_gradients_match_pytorch(torch, options):
    ours = nn.Embedding(6, 3, **options).double()
    theirs = torch.nn.Embedding(6, 3, **options).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.detach().numpy()))
    indices = np.array([[0, 2, 2, 5], [1, 2, 0, 0]])
    upstream = np.random.default_rng(0).standard_normal((2, 4, 3))
    a, b = ours(cr.tensor(indices)), theirs(torch.tensor(indices))
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    a.backward(upstream)
    b.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12)
    assert repr(ours) == repr(theirs)


@given(data=st.data())
def test_embedding_gradient_matches_finite_differences(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n, dim = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), max_size=3)))
    indices = rng.integers(0, n, size=shape)
    padding_idx = data.draw(st.integers(-n, n - 1))
    weight = cr.tensor(rng.standard_normal((n, dim)), requires_grad=True)
    upstream = rng.standard_normal((*shape, dim))
    assert cr.gradcheck(lambda w: F.embedding(indices, w), weight).passed
    F.embedding(indices, weight).backward(upstream)
    exact = np.array(weight.grad)
    # padding_idx and scale_grad_by_freq change the gradient on purpose, as PyTorch does:
    # the padding row gets none, and each row's gradient is divided by its index's count
    weight.grad = None
    F.embedding(indices, weight, padding_idx).backward(upstream)
    padding_row = padding_idx % n
    np.testing.assert_array_equal(weight.grad[padding_row], 0)
    exact_without_padding = np.delete(exact, padding_row, axis=0)
    np.testing.assert_allclose(np.delete(weight.grad, padding_row, axis=0), exact_without_padding)
    weight.grad = None
    F.embedding(indices, weight, scale_grad_by_freq=True).backward(upstream)
    counts = np.bincount(indices.reshape(-1), minlength=n)[:, None]
    np.testing.assert_allclose(weight.grad, exact / np.maximum(counts, 1), rtol=1e-12)


def test_embedding_gradient_of_no_index_and_of_many_repeats():
    weight = cr.tensor(np.ones((5, 2)), requires_grad=True)
    F.embedding(np.zeros(0, dtype=np.int64), weight).sum().backward()
    np.testing.assert_array_equal(weight.grad, 0)
    rng = np.random.default_rng(1)
    indices, upstream = rng.integers(0, 5, 300), rng.standard_normal((300, 2))
    weight.grad = None
    F.embedding(indices, weight).backward(upstream)
    expected = np.zeros((5, 2))
    np.add.at(expected, indices, upstream)
    np.testing.assert_allclose(weight.grad, expected, rtol=1e-12)


def test_embedding_initialisation_and_from_pretrained():
    cr.manual_seed(0)
    table = nn.Embedding(4000, 50, padding_idx=3)
    w = table.weight.detach().numpy()
    assert w.dtype == np.float32 and not w[3].any()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
    rows = np.arange(6.0).reshape(3, 2)
    frozen = nn.Embedding.from_pretrained(cr.tensor(rows, dtype="float64"))
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(cr.tensor([2, 0])).numpy(), rows[[2, 0]])
    assert nn.Embedding.from_pretrained(cr.tensor(rows), freeze=False).weight.requires_grad
    assert list(nn.Sequential(nn.Embedding(3, 2)).state_dict()) == ["0.weight"]


def test_embedding_errors_name_the_layer():
    table = nn.Embedding(5, 2)
    with pytest.raises(
        IndexError, match=r"Embedding\(5, 2\) got index 5: indices must be in \[0, 5\)"
    ):
        table(cr.tensor([[1, 5]]))
    with pytest.raises(IndexError, match="got index -1"):
        table(cr.tensor([-1]))
    with pytest.raises(
        TypeError, match=r"Embedding\(5, 2\) needs integer indices, got dtype float32"
    ):
        table(cr.tensor([1.0]))
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.Embedding(5, 2, max_norm=1.0)
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(5, 2, sparse=True)
    with pytest.raises(ValueError, match="padding_idx 5"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="shape"):
        nn.Embedding.from_pretrained(cr.zeros(3))


@pytest.mark.torch
def test_training_an_embedding_bag_of_words_model_matches_pytorch(torch):
    def run(lib):
        lib.manual_seed(0)
        model = lib.nn.Sequential(lib.nn.Embedding(8, 4, padding_idx=0), lib.nn.Flatten())
        return model

    ours, theirs = run(cr).double(), run(torch).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    tokens = np.array([[1, 2, 0], [3, 3, 7], [0, 0, 5]])
    target = np.random.default_rng(1).standard_normal((3, 12))
    for model, lib, opt in (
        (ours, cr, cr.optim.Adam(ours.parameters(), lr=0.1)),
        (theirs, torch, torch.optim.Adam(theirs.parameters(), lr=0.1)),
    ):
        for _ in range(5):
            opt.zero_grad()
            ((model(lib.tensor(tokens)) - lib.tensor(target)) ** 2).mean().backward()
            opt.step()
    np.testing.assert_allclose(
        ours[0].weight.detach().numpy(), theirs[0].weight.detach().numpy(), rtol=1e-10, atol=1e-12
    )
    assert not ours[0].weight.detach().numpy()[0].any()
