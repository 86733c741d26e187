"""Data types, PyTorch's type promotion, sizes, devices and the Tensor constructor."""

import itertools

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]


def operand(kind, dtype, lib):
    """A dimensioned tensor, a 0-d tensor, or a Python number."""
    if kind == "number":
        return {"bool": True, "int64": 3, "float32": 2.5}[dtype]
    shape = (2,) if kind == "dim" else ()
    values = np.ones(shape, dtype=dtype) * (1 if dtype == "bool" else 2)
    return lib.tensor(values) if lib is torch else cr.tensor(values)


CASES = [
    (ka, da, kb, db)
    for ka, kb in [("dim", "dim"), ("dim", "zero"), ("dim", "number"), ("zero", "number")]
    for da in DTYPES
    for db in (DTYPES if kb != "number" else ["bool", "int64", "float32"])
]


@pytest.mark.parametrize("ka,da,kb,db", CASES)
def test_binary_ops_promote_types_as_pytorch_does(ka, da, kb, db):
    names = ("add", "mul", "div") if kb == "number" else ("add", "mul", "div", "maximum")
    for name in names:
        theirs = getattr(torch, name)(operand(ka, da, torch), operand(kb, db, torch))
        ours = getattr(cr, name)(operand(ka, da, cr), operand(kb, db, cr))
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (name, ka, da, kb, db)


def test_float32_networks_stay_float32():
    x = cr.randn(4, 3, requires_grad=True)
    powers = cr.arange(3)
    for y in (
        x**powers,
        x * 2,
        x / 3,
        1 - x,
        x * cr.tensor(2.0, dtype=cr.float64),
        x + cr.arange(3),
        cr.where(x > 0, x, 0.0),
        cr.maximum(x, cr.zeros(3, dtype=cr.int32)),
    ):
        assert y.dtype == cr.float32
    y.sum().backward()
    assert x.grad.dtype == cr.float32
    assert (cr.arange(4) / 2).dtype == cr.float32  # true division of integers: the default float
    assert cr.arange(3).exp().dtype == cr.float32


def test_default_dtype_can_be_changed():
    assert cr.get_default_dtype() == cr.float32
    cr.set_default_dtype(cr.float64)
    try:
        assert cr.tensor([1.5]).dtype == cr.float64 and cr.zeros(2).dtype == cr.float64
        assert cr.nn.Linear(2, 2).weight.dtype == cr.float64
        assert (cr.arange(3) * 0.5).dtype == cr.float64
    finally:
        cr.set_default_dtype(cr.float32)
    with pytest.raises(TypeError, match="floating-point"):
        cr.set_default_dtype(cr.long)


def test_dtype_names_and_conversions():
    assert cr.float is cr.float32 and cr.double is cr.float64 and cr.half is cr.float16
    assert cr.long is cr.int64 and cr.int is cr.int32 and cr.bool is cr.bool_
    x = cr.tensor([1.7, -2.2])
    assert x.long().tolist() == [1, -2] and x.long().dtype == cr.long
    assert x.int().dtype == cr.int32 and x.half().dtype == cr.float16 and x.bool().dtype == cr.bool
    assert x.double().dtype == cr.float64 and x.to(cr.float64).dtype == cr.float64
    assert x.type() == "chainrule.FloatTensor" and x.type(cr.double).dtype == cr.float64
    assert x.to(x) is x and x.to("cpu") is x and x.to("cpu", cr.double).dtype == cr.double
    assert x.is_floating_point() and not x.long().is_floating_point()
    assert cr.finfo(cr.float32).eps == np.finfo(np.float32).eps


def test_size_numel_dim_and_the_size_type():
    x = cr.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and isinstance(x.size(), cr.Size) and isinstance(x.shape, cr.Size)
    assert x.size(1) == 3 and x.size(-1) == 4 and x.size()[1:] == (3, 4)
    assert x.numel() == 24 == x.shape.numel() and x.dim() == 3 and x.ndim == 3
    with pytest.raises(IndexError, match="out of range"):
        x.size(3)
    assert torch.zeros(2, 3).size() == tuple(cr.zeros(2, 3).size())


def test_the_legacy_constructor_is_pytorchs():
    assert cr.Tensor(2, 3).shape == (2, 3) and cr.Tensor(2, 3).dtype == cr.float32
    assert cr.Tensor(5).shape == (5,)
    assert cr.Tensor([1, 2]).dtype == cr.float32 and cr.Tensor([1, 2]).tolist() == [1.0, 2.0]
    assert cr.Tensor(np.array([1.5], dtype=np.float64)).dtype == cr.float32
    assert cr.Tensor().shape == (0,) and cr.Tensor(cr.Size([2, 2])).shape == (2, 2)
    with pytest.raises(TypeError, match="cr.tensor"):
        cr.Tensor(2.5)


def test_devices_answer_truthfully():
    assert not cr.cuda.is_available() and cr.cuda.device_count() == 0
    assert not cr.accelerator.is_available() and cr.accelerator.current_accelerator() is None
    assert not cr.backends.mps.is_available()
    device = cr.device("cuda" if cr.cuda.is_available() else "cpu")
    assert device == "cpu" and str(device) == "cpu" and cr.device("cpu") == cr.device("cpu")
    x = cr.ones(2, device=device)
    assert x.device == device and x.to(device) is x and x.cpu() is x
    model = cr.nn.Linear(2, 2).to(device)
    assert isinstance(model, cr.nn.Linear)
    for bad in ("cuda", "cuda:0", "mps"):
        with pytest.raises(RuntimeError, match="not available"):
            x.to(bad)
        with pytest.raises(RuntimeError, match="not available"):
            cr.zeros(2, device=bad)
    with pytest.raises(RuntimeError, match="unknown device type"):
        cr.device("gpu")
    with pytest.raises(RuntimeError, match="not available"):
        x.cuda()


def test_promote_types_table_matches_pytorch():
    for a, b in itertools.product(DTYPES, DTYPES):
        theirs = torch.promote_types(getattr(torch, a), getattr(torch, b))
        assert str(cr.promote_types(a, b)) == str(theirs).replace("torch.", ""), (a, b)


def test_tensor_formatting_and_numpy_interplay():
    loss = cr.tensor(0.123456)
    assert f"{loss:.3f}" == "0.123" and "%.2f" % loss == "0.12"  # noqa: UP031 - as tutorials write
    x = cr.tensor([1.0, np.nan])
    assert np.isfinite(x).tolist() == [True, False]  # NumPy functions give tensors, as PyTorch's
    y = np.float64(2.0) * cr.ones(2, requires_grad=True)
    assert isinstance(y, cr.Tensor) and y.requires_grad and y.dtype == cr.float32
    assert np.exp(cr.zeros(2, requires_grad=True)).requires_grad
