"""PyTorch's everyday surface that published programs use, against PyTorch itself: import
paths, legacy constructors, ``inplace=`` flags, and the small ops and losses those programs call."""

import importlib

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")

# -- import paths ----------------------------------------------------------------------------------

# (module path under torch / chainrule, names a program imports from it)
PATHS = [
    ("utils.data", ["DataLoader", "TensorDataset", "RandomSampler", "random_split"]),
    ("utils.data.dataloader", ["DataLoader", "default_collate", "get_worker_info"]),
    ("utils.data.dataset", ["Dataset", "TensorDataset", "Subset", "ConcatDataset"]),
    ("utils.data.sampler", ["Sampler", "RandomSampler", "BatchSampler", "SequentialSampler"]),
    ("backends.cudnn", ["deterministic", "benchmark", "is_available"]),
    ("nn.parallel", ["DataParallel"]),
    ("nn.modules", []),
    ("nn.modules.module", ["Module"]),
    ("nn.modules.container", ["Sequential", "ModuleList", "ModuleDict"]),
    ("nn.modules.linear", ["Linear", "Identity"]),
    ("nn.modules.activation", ["ReLU", "LeakyReLU", "GELU", "Softmax"]),
    ("nn.modules.conv", ["Conv2d"]),
    ("nn.modules.pooling", ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]),
    ("nn.modules.batchnorm", ["BatchNorm1d", "BatchNorm2d"]),
    ("nn.modules.normalization", ["LayerNorm"]),
    ("nn.modules.dropout", ["Dropout", "Dropout2d"]),
    ("nn.modules.rnn", ["RNN", "LSTM", "GRU", "RNNBase", "LSTMCell"]),
    ("nn.modules.transformer", ["TransformerEncoderLayer", "Transformer"]),
    ("nn.modules.sparse", ["Embedding"]),
    ("nn.modules.flatten", ["Flatten", "Unflatten"]),
    ("nn.modules.loss", ["MSELoss", "CrossEntropyLoss", "NLLLoss", "_Loss"]),
]


@pytest.mark.parametrize("path, names", PATHS, ids=[p for p, _ in PATHS])
def test_modules_import_from_pytorchs_paths(path, names):
    ours, theirs = (
        importlib.import_module(f"chainrule.{path}"),
        importlib.import_module(f"torch.{path}"),
    )
    for name in names:
        assert hasattr(theirs, name), f"torch.{path} has no {name}: fix this table"
        assert hasattr(ours, name), f"chainrule.{path} has no {name}"
    classes = [getattr(ours, n) for n in names if isinstance(getattr(ours, n), type)]
    assert all(
        c is getattr(nn, c.__name__, c) or c.__module__.startswith("chainrule.") for c in classes
    )


def test_utils_data_keeps_its_names_and_is_a_package():
    from chainrule.utils import data

    assert data.sampler.RandomSampler is cr.data.RandomSampler
    assert data.dataloader.DataLoader is data.DataLoader is cr.data.DataLoader
    assert all(hasattr(data, name) for name in data.__all__) and hasattr(data, "__path__")


def test_backends_cudnn_flags_are_set_and_read_as_in_pytorch():
    import chainrule.backends.cudnn as cudnn

    assert cr.backends.cudnn is cudnn and not cudnn.is_available()
    assert cudnn.enabled == torch.backends.cudnn.enabled and cudnn.version() is None
    before = cudnn.deterministic
    try:
        cr.backends.cudnn.deterministic = True
        assert cudnn.deterministic is True
    finally:
        cudnn.deterministic = before
    assert not cr.backends.mps.is_available() and not cr.backends.cuda.is_built()
    for flag in ("allow_tf32", "allow_fp16_reduced_precision_reduction"):
        assert getattr(cr.backends.cuda.matmul, flag) == getattr(torch.backends.cuda.matmul, flag)
    assert cudnn.allow_tf32 == torch.backends.cudnn.allow_tf32
    cr.backends.cuda.matmul.allow_tf32 = True  # nanoGPT's line: accepted
    cr.backends.cuda.matmul.allow_tf32 = False


def test_data_parallel_is_a_pass_through_named_as_pytorchs():
    inner = nn.Linear(4, 2)
    model = nn.DataParallel(inner, device_ids=[0, 1])
    theirs = torch.nn.DataParallel(torch.nn.Linear(4, 2))  # on a CPU-only torch: a pass-through
    assert list(model.state_dict()) == list(theirs.state_dict()) == ["module.weight", "module.bias"]
    x = cr.randn(3, 4)
    np.testing.assert_array_equal(model(x).detach().numpy(), inner(x).detach().numpy())
    assert model.module is inner and len(list(model.parameters())) == 2
    with pytest.raises(TypeError, match="DataParallel wraps a Module"):
        nn.DataParallel(lambda x: x)


# -- inplace= and Dropout2d --------------------------------------------------------------------------

INPLACE_LAYERS = {
    "ReLU(True)": (lambda m: m.ReLU(True)),
    "LeakyReLU(0.2, inplace=True)": (lambda m: m.LeakyReLU(0.2, inplace=True)),
    "Dropout(0.3, inplace=True)": (lambda m: m.Dropout(0.3, inplace=True)),
    "Dropout2d(0.2, True)": (lambda m: m.Dropout2d(0.2, True)),
    "ReLU()": (lambda m: m.ReLU()),
    "Dropout()": (lambda m: m.Dropout()),
}


@pytest.mark.parametrize("name", INPLACE_LAYERS)
def test_inplace_is_accepted_printed_and_kept_as_pytorchs(name):
    ours, theirs = INPLACE_LAYERS[name](nn), INPLACE_LAYERS[name](torch.nn)
    assert repr(ours) == repr(theirs)
    assert ours.inplace == theirs.inplace
    assert type(ours).from_config(ours.config()).config() == ours.config()
    assert ours.config()["inplace"] == theirs.inplace
    x = np.random.default_rng(0).normal(size=(4, 3, 2, 2)).astype(np.float32)
    ours.eval(), theirs.eval()
    got = ours(cr.tensor(x)).numpy()
    np.testing.assert_allclose(got, theirs(torch.tensor(x)).numpy(), rtol=1e-6)


def test_an_inplace_layer_gives_the_same_gradients_and_leaves_its_input():
    """The flag changes nothing numerically (docs/pytorch-differences.md): the output and the
    gradients are those of the layer without it, and the input keeps its values."""
    x = cr.tensor([[-1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    h = x * 2
    y = nn.LeakyReLU(0.1, inplace=True)(h)
    y.sum().backward()
    np.testing.assert_array_equal(h.detach().numpy(), [[-2.0, 4.0], [6.0, -8.0]])
    np.testing.assert_allclose(x.grad.numpy(), [[0.2, 2.0], [2.0, 0.2]], rtol=1e-6)
    with pytest.raises(ValueError, match="ReLU: inplace must be True or False, got 'yes'"):
        nn.ReLU("yes")


def test_functional_dropout_inplace_writes_into_its_input_as_pytorchs():
    x = cr.ones(50, 40)
    y = cr.nn.functional.dropout(x, 0.5, True, inplace=True)
    assert y is x and set(np.unique(x.numpy())) == {0.0, 2.0}
    t = torch.ones(50, 40)
    assert torch.nn.functional.dropout(t, 0.5, True, inplace=True) is t


def test_dropout2d_on_2d_input_warns_and_drops_element_wise_as_pytorch():
    layer, theirs = nn.Dropout2d(0.5), torch.nn.Dropout2d(0.5)
    with pytest.warns(UserWarning, match="2-D input to dropout2d"):
        ours = layer(cr.ones(200, 50)).numpy()
    with pytest.warns(UserWarning, match="2-D input to dropout2d"):
        reference = theirs(torch.ones(200, 50)).numpy()
    for out in (ours, reference):
        assert set(np.unique(out)) == {0.0, 2.0} and 0.4 < (out == 0).mean() < 0.6
        mixed_rows = ((out == 0).any(axis=1) & (out != 0).any(axis=1)).mean()
        assert mixed_rows > 0.9  # not whole rows: each (n, c) is its own channel
    with pytest.warns(UserWarning, match="3D input"):
        sequences = layer(cr.ones(30, 20, 7)).numpy()
    assert (sequences == sequences[..., :1]).all()  # (N, C, L): channels dropped along L
    with pytest.raises(ValueError, match=r"Dropout2d\(p=0.5, inplace=False\) got input of shape"):
        layer(cr.ones(5))
    with pytest.warns(UserWarning, match="2-D input"):  # PyTorch warns in evaluation too
        assert layer.eval()(cr.ones(3, 4)).numpy().tolist() == [[1.0] * 4] * 3


# -- losses ----------------------------------------------------------------------------------------


def both(fn_ours, fn_theirs, *arrays, **kwargs):
    """(our value, our input gradient), (PyTorch's): the loss of the first array (float64)."""
    x = cr.tensor(arrays[0], requires_grad=True)
    loss = fn_ours(x, *(cr.tensor(a) for a in arrays[1:]), **kwargs)
    loss.sum().backward()
    tx = torch.tensor(arrays[0], requires_grad=True)
    their = fn_theirs(tx, *(torch.tensor(a) for a in arrays[1:]), **kwargs)
    their.sum().backward()
    return (loss.detach().numpy(), x.grad.numpy()), (their.detach().numpy(), tx.grad.numpy())


def assert_same(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_smooth_l1_loss_is_pytorchs(beta, reduction):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 3)) * 2, rng.normal(size=(5, 3))
    F, TF = cr.nn.functional, torch.nn.functional
    assert_same(*both(F.smooth_l1_loss, TF.smooth_l1_loss, x, y, reduction=reduction, beta=beta))
    module = nn.SmoothL1Loss(reduction, beta)(cr.tensor(x), cr.tensor(y)).numpy()
    expected = torch.nn.SmoothL1Loss(reduction=reduction, beta=beta)(
        torch.tensor(x), torch.tensor(y)
    )
    np.testing.assert_allclose(module, expected.numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be a number >= 0, got -1"):
        F.smooth_l1_loss(cr.tensor(x), cr.tensor(y), beta=-1)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-1, 2, -100])
def test_ignore_index_is_pytorchs(name, reduction, ignore_index):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 4))
    labels = np.array([0, ignore_index, 3, 2, ignore_index, 1, 3]) % 4
    labels[[1, 4]] = ignore_index
    ours, theirs = getattr(cr.nn.functional, name), getattr(torch.nn.functional, name)
    kwargs = {"reduction": reduction, "ignore_index": ignore_index}
    assert_same(*both(ours, theirs, x, labels, **kwargs))
    if name == "cross_entropy":
        kwargs["label_smoothing"] = 0.2
        assert_same(*both(ours, theirs, x, labels, **kwargs))


def test_ignore_index_in_the_modules_and_at_the_edges():
    x = cr.tensor(np.random.default_rng(3).normal(size=(3, 4)))
    ignored = cr.tensor([-1, -1, -1])
    loss = nn.CrossEntropyLoss(ignore_index=-1)
    with pytest.warns(RuntimeWarning, match="invalid value"):  # NumPy's 0 / 0 (see the docs)
        assert loss.ignore_index == -1 and np.isnan(loss(x, ignored).item())
    their = torch.nn.CrossEntropyLoss(ignore_index=-1)(
        torch.tensor(x.numpy()), torch.tensor([-1] * 3)
    )
    assert np.isnan(their.item())  # PyTorch: a mean over no label is nan too
    assert nn.NLLLoss(ignore_index=5)(x, cr.tensor([5, 1, 5])).item() == -x.numpy()[1, 1]
    with pytest.raises(ValueError, match="label -1 is out of range for 4 classes"):
        cr.nn.functional.cross_entropy(x, cr.tensor([0, -1, 2]))  # -100 is the default
    with pytest.raises(ValueError, match="label 7 is out of range"):
        cr.nn.functional.nll_loss(x, cr.tensor([0, 7, -100]))


# -- tensors ---------------------------------------------------------------------------------------


def test_roll_refuses_what_pytorch_refuses_in_one_line():
    x = cr.arange(6).reshape(2, 3)
    assert cr.roll(x, 1).tolist() == torch.roll(torch.arange(6).reshape(2, 3), 1).tolist()
    with pytest.raises(ValueError, match="roll: shifts and dims must align: 2 shifts for 1 dims"):
        x.roll((1, 2), 0)
    with pytest.raises(ValueError, match="2 shifts for 0 dims"):
        cr.roll(x, (1, 2))
    with pytest.raises(IndexError, match="roll: dim 2 is out of range for 2 dimensions"):
        x.roll(1, 2)
    with pytest.raises(TypeError, match="roll: shifts must be integers"):
        x.roll(1.5, 0)


LEGACY = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor"]
LEGACY += ["CharTensor", "ByteTensor", "BoolTensor"]


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_constructors_make_pytorchs_tensors(name):
    ours, theirs = getattr(cr, name), getattr(torch, name)
    for args in [([1, 0, 2],), (2, 3), (), (cr.Size([4]),)]:
        got = ours(*args)
        expected = theirs(*(torch.Size(a) if isinstance(a, cr.Size) else a for a in args))
        assert str(got.dtype) == str(expected.dtype).removeprefix("torch.")
        assert tuple(got.shape) == tuple(expected.shape)
        if args and isinstance(args[0], list):
            assert got.tolist() == expected.tolist()
        assert isinstance(got, ours) and isinstance(got, cr.Tensor)
        assert not isinstance(got, cr.FloatTensor if name != "FloatTensor" else cr.LongTensor)
    assert cr.ones(2).type(ours).dtype == ours.dtype
    assert cr.ones(2).type(ours).type() == torch.ones(2).type(theirs).type().replace(
        "torch", "chainrule"
    )


def test_variable_is_a_pass_through_as_pytorchs():
    from chainrule.autograd import Variable

    t = cr.ones(3)
    v = Variable(t, requires_grad=True)
    tv = torch.autograd.Variable(torch.ones(3), requires_grad=True)
    assert type(v) is cr.Tensor and v is not t and v.requires_grad and not t.requires_grad
    assert (
        tv.requires_grad
        and isinstance(t, Variable)
        and isinstance(torch.ones(1), torch.autograd.Variable)
    )
    t.numpy()[0] = 5.0  # the same storage
    assert v.tolist() == [5.0, 1.0, 1.0]
    (v * v).sum().backward()
    assert v.grad.tolist() == [10.0, 2.0, 2.0]
    assert not Variable(t, volatile=True).requires_grad
    with pytest.raises(TypeError, match="Variable wraps a tensor, got list"):
        Variable([1.0])


def test_device_and_layout_questions_answer_as_a_cpu_tensor_in_pytorch():
    theirs = torch.ones(2)
    names = [n for n in dir(theirs) if n.startswith("is_") and not callable(getattr(theirs, n))]
    names.remove("is_leaf")
    assert {"is_cuda", "is_xpu", "is_mps", "is_cpu"} <= set(names)
    ours = cr.ones(2)
    assert {n: getattr(ours, n) for n in names} == {n: getattr(theirs, n) for n in names}
