"""ConvTranspose1d and ConvTranspose2d against PyTorch's, from the same weights: outputs and the
gradients of input, weight and bias (float64 to 1e-10, float32 to 1e-5), the init, output_size,
and the refusals (the op's float64 gradcheck over random shapes is in op_table.py)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")

# (in_channels, out_channels, kernel_size, options, input spatial shape)
CASES_2D = {
    "plain": (3, 4, 3, {}, (5, 6)),
    "stride": (2, 3, (3, 2), {"stride": (2, 3)}, (4, 3)),
    "padding": (2, 3, 4, {"stride": 2, "padding": 1}, (5, 5)),  # DCGAN's doubling layer
    "output_padding": (2, 2, 3, {"stride": 3, "padding": 1, "output_padding": (2, 1)}, (3, 4)),
    "dilation": (2, 3, 3, {"dilation": (2, 3), "output_padding": 1, "padding": 2}, (4, 4)),
    "groups": (4, 6, 3, {"groups": 2, "stride": 2}, (3, 5)),
    "depthwise": (3, 3, 2, {"groups": 3, "stride": 2, "bias": False}, (4, 4)),
    "bias False": (3, 2, 1, {"bias": False}, (2, 3)),
    "1x1 noise to 4x4": (6, 4, 4, {"bias": False}, (1, 1)),  # DCGAN's first layer
}
CASES_1D = {
    "plain": (3, 4, 3, {}, (7,)),
    "stride padding": (2, 3, 4, {"stride": 2, "padding": 1, "output_padding": 1}, (6,)),
    "dilation groups": (4, 2, 3, {"dilation": 2, "groups": 2, "bias": False}, (5,)),
}
CASES = [("2d", name, *case) for name, case in CASES_2D.items()]
CASES += [("1d", name, *case) for name, case in CASES_1D.items()]


def pair_of_layers(dims, c_in, c_out, kernel, options, dtype):
    """A torch layer and ours holding the same weights, both in ``dtype``."""
    name = f"ConvTranspose{dims}"
    theirs = getattr(torch.nn, name)(c_in, c_out, kernel, **options).to(getattr(torch, dtype))
    ours = getattr(nn, name)(c_in, c_out, kernel, **options).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("dims, name, c_in, c_out, kernel, options, spatial", CASES)
def test_layer_matches_pytorch(dims, name, c_in, c_out, kernel, options, spatial, dtype, tolerance):
    rng = np.random.default_rng(0)
    theirs, ours = pair_of_layers(dims, c_in, c_out, kernel, options, dtype)
    x = rng.normal(size=(2, c_in, *spatial)).astype(dtype)
    x_theirs, x_ours = torch.tensor(x, requires_grad=True), cr.tensor(x, requires_grad=True)
    y_theirs, y_ours = theirs(x_theirs), ours(x_ours)
    assert tuple(y_ours.shape) == tuple(y_theirs.shape) == ours.output_shape(x.shape)
    assert y_ours.dtype == np.dtype(dtype)
    upstream = rng.normal(size=tuple(y_theirs.shape)).astype(dtype)
    y_theirs.backward(torch.tensor(upstream))
    y_ours.backward(upstream)

    def close(a, b):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance * scale)

    close(y_ours.detach().numpy(), y_theirs.detach().numpy())
    close(x_ours.grad.numpy(), x_theirs.grad.numpy())
    for (key, p_ours), p_theirs in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert p_ours.grad.dtype == np.dtype(dtype), key
        close(p_ours.grad.numpy(), p_theirs.grad.numpy())


def test_functional_forms_match_pytorch_with_arguments_in_its_order():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 4, 3, 3)), rng.normal(size=(4, 3, 2, 3)), rng.normal(size=6)
    # stride, padding, output_padding, groups, dilation: PyTorch's positional order
    args = (2, 1, 1, 2, (1, 2))
    expected = torch.nn.functional.conv_transpose2d(*map(torch.tensor, (x, w, b)), *args)
    ours = nn.functional.conv_transpose2d(*map(cr.tensor, (x, w, b)), *args)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=0, atol=1e-12)
    x1, w1 = rng.normal(size=(2, 3, 5)), rng.normal(size=(3, 2, 3))
    expected = torch.nn.functional.conv_transpose1d(torch.tensor(x1), torch.tensor(w1), None, 2)
    ours = nn.functional.conv_transpose1d(cr.tensor(x1), cr.tensor(w1), None, 2)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dims", ["1d", "2d"])
def test_init_follows_pytorch(dims):
    """Weight and bias uniform in +-1/sqrt(fan_in), fan_in = out_channels/groups * taps."""
    cr.manual_seed(0)
    layer = getattr(nn, f"ConvTranspose{dims}")(6, 8, 3, groups=2)
    bound = 1 / np.sqrt(4 * (3 if dims == "1d" else 9))
    for p in (layer.weight, layer.bias):
        values = p.detach().numpy()
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.8 * bound  # spread over the range, not squeezed
    assert layer.weight.shape == ((6, 4, 3) if dims == "1d" else (6, 4, 3, 3))


@pytest.mark.parametrize("size", [(9, 9), (10, 10), (1, 2, 10, 9)])
def test_output_size_picks_the_output_padding_as_pytorch(size):
    theirs, ours = pair_of_layers("2d", 2, 3, 3, {"stride": 2, "padding": 1}, "float64")
    x = np.random.default_rng(2).normal(size=(1, 2, 5, 5))
    expected = theirs(torch.tensor(x), output_size=list(size)).detach().numpy()
    result = ours(cr.tensor(x), output_size=size).detach().numpy()
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.ConvTranspose2d(3, 4, 3, groups=2), "not divisible by groups"),
        (lambda: nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"), "padding_mode='zeros'"),
        (lambda: nn.ConvTranspose2d(2, 2, 0), "kernel_size, stride and dilation must be >= 1"),
        (lambda: nn.ConvTranspose2d(2, 2, 3, padding=-1), "padding and output_padding"),
        (lambda: nn.ConvTranspose1d(2, 2, (3, 3)), "kernel_size must be an int or a tuple of one"),
    ],
)
def test_bad_settings_are_refused_when_built(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "layer, shape, call, message",
    [
        (nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), (1, 2, 3, 3), {}, "smaller"),
        (nn.ConvTranspose2d(2, 2, 3), (1, 3, 4, 4), {}, "needs 2 channels"),
        (nn.ConvTranspose2d(2, 2, 3), (2, 4, 4), {}, r"expected \(N, C, H, W\)"),
        (nn.ConvTranspose1d(2, 2, 3), (1, 2, 4, 4), {}, r"expected \(N, C, L\)"),
        (nn.ConvTranspose2d(2, 2, 3, padding=3), (1, 2, 1, 1), {}, "empty"),
        (nn.ConvTranspose2d(2, 2, 3, stride=2), (1, 2, 4, 4), {"output_size": (12, 9)}, "size"),
    ],
)
def test_bad_inputs_are_refused_naming_the_layer(layer, shape, call, message):
    with pytest.raises(ValueError, match=message) as caught:
        layer(cr.zeros(*shape), **call)
    assert "ConvTranspose" in str(caught.value)


def test_a_dcgan_generator_matches_pytorch_and_learns():
    """PyTorch's DCGAN generator, shrunk: ConvTranspose2d, BatchNorm2d and ReLU from a 1x1
    noise image to 16x16, the same outputs from the same weights; a few Adam steps on a target
    image lower the error."""

    def generator(lib):
        layers = lib.nn
        return layers.Sequential(
            layers.ConvTranspose2d(8, 16, 4, 1, 0, bias=False),
            layers.BatchNorm2d(16),
            layers.ReLU(),
            layers.ConvTranspose2d(16, 8, 4, 2, 1, bias=False),
            layers.BatchNorm2d(8),
            layers.ReLU(),
            layers.ConvTranspose2d(8, 1, 4, 2, 1, bias=False),
            layers.Tanh(),
        )

    theirs, ours = generator(torch).double(), generator(cr).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    noise = np.random.default_rng(3).normal(size=(4, 8, 1, 1))
    expected = theirs(torch.tensor(noise)).detach().numpy()
    fake = ours(cr.tensor(noise))
    assert fake.shape == (4, 1, 16, 16)
    np.testing.assert_allclose(fake.detach().numpy(), expected, rtol=0, atol=1e-10)

    target = cr.tensor(np.linspace(-0.5, 0.5, 256).reshape(1, 1, 16, 16))
    optimizer = cr.optim.Adam(ours.parameters(), lr=0.01)
    errors = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(ours(cr.tensor(noise)), target.expand(4, 1, 16, 16))
        loss.backward()
        optimizer.step()
        errors.append(loss.item())
    assert errors[-1] < 0.5 * errors[0]


def test_an_output_no_memory_holds_is_refused_before_allocating(monkeypatch):
    from chainrule import backend

    monkeypatch.setattr(backend, "available_memory", lambda: 1 << 20)
    layer = nn.ConvTranspose2d(1, 1, 2, stride=2**12)  # as a model file may ask
    with pytest.raises(MemoryError, match=r"ConvTranspose2d\(1 -> 1, 2x2, stride.*GiB free"):
        layer(cr.ones(1, 1, 4, 4))


def test_a_weight_of_the_wrong_rank_is_named():
    with pytest.raises(ValueError, match=r"conv_transpose2d: weight of shape \(2, 2, 3\)"):
        nn.functional.conv_transpose2d(cr.ones(1, 2, 3, 3), cr.ones(2, 2, 3))
