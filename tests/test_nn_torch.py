"""Layers against PyTorch (values, gradients, running statistics) and whole-module gradient checks."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")


def test_sequential_names_match_pytorch():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert list(model.state_dict()) == list(reference.state_dict())
    assert isinstance(model[0], nn.Linear) and len(model) == 3


LAYERS = {
    "Linear": (lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), (4, 5)),
    "Linear-3d": (lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), (2, 4, 5)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(5), lambda: torch.nn.BatchNorm1d(5), (8, 5)),
    "BatchNorm1d-3d": (lambda: nn.BatchNorm1d(5), lambda: torch.nn.BatchNorm1d(5), (4, 5, 3)),
    "LayerNorm": (lambda: nn.LayerNorm(5), lambda: torch.nn.LayerNorm(5), (4, 5)),
    "LayerNorm-2d": (lambda: nn.LayerNorm((3, 5)), lambda: torch.nn.LayerNorm((3, 5)), (2, 3, 5)),
    "ReLU": (nn.ReLU, torch.nn.ReLU, (4, 5)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), lambda: torch.nn.LeakyReLU(0.1), (4, 5)),
    "Sigmoid": (nn.Sigmoid, torch.nn.Sigmoid, (4, 5)),
    "Tanh": (nn.Tanh, torch.nn.Tanh, (4, 5)),
    "GELU": (nn.GELU, torch.nn.GELU, (4, 5)),
    "Softplus": (nn.Softplus, torch.nn.Softplus, (4, 5)),
    "Softmax": (lambda: nn.Softmax(1), lambda: torch.nn.Softmax(1), (4, 5)),
    "LogSoftmax": (lambda: nn.LogSoftmax(1), lambda: torch.nn.LogSoftmax(1), (4, 5)),
    "Flatten": (nn.Flatten, torch.nn.Flatten, (4, 2, 3)),
    "Identity": (nn.Identity, torch.nn.Identity, (4, 5)),
    "PixelShuffle": (lambda: nn.PixelShuffle(2), lambda: torch.nn.PixelShuffle(2), (2, 12, 3, 4)),
    "PixelUnshuffle": (
        lambda: nn.PixelUnshuffle(3),
        lambda: torch.nn.PixelUnshuffle(3),
        (2, 2, 6, 9),
    ),
    "Conv2d": (
        lambda: nn.Conv2d(2, 3, 3, padding=1),
        lambda: torch.nn.Conv2d(2, 3, 3, padding=1),
        (2, 2, 5, 5),
    ),
    "Conv2d-groups-stride": (
        lambda: nn.Conv2d(4, 6, (3, 2), stride=2, groups=2, bias=False),
        lambda: torch.nn.Conv2d(4, 6, (3, 2), stride=2, groups=2, bias=False),
        (2, 4, 7, 6),
    ),
    "Conv2d-same-dilated": (
        lambda: nn.Conv2d(2, 2, 3, padding="same", dilation=2),
        lambda: torch.nn.Conv2d(2, 2, 3, padding="same", dilation=2),
        (1, 2, 6, 6),
    ),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 6, 6)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, 2, 1), lambda: torch.nn.AvgPool2d(3, 2, 1), (2, 3, 7, 7)),
    "AdaptiveAvgPool2d": (
        lambda: nn.AdaptiveAvgPool2d((2, 3)),
        lambda: torch.nn.AdaptiveAvgPool2d((2, 3)),
        (2, 3, 7, 7),
    ),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 5)),
}


def _randomize(ours, theirs, rng):
    """Give both modules the same random parameters (so affine layers are not trivially 1/0)."""
    state = {
        k: rng.standard_normal(v.shape)
        for k, v in ours.state_dict().items()
        if k in dict(ours.named_parameters())
    }
    ours.load_state_dict(state, strict=False)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=False)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("training", [True, False])
def test_layer_matches_pytorch_values_and_gradients(name, training):
    make_ours, make_theirs, shape = LAYERS[name]
    rng = np.random.default_rng(0)
    ours, theirs = make_ours().double(), make_theirs().double()
    _randomize(ours, theirs, rng)
    ours.train(training)
    theirs.train(training)
    x = rng.standard_normal(shape) * 2
    for _ in range(2):  # twice: running statistics are updated and then used
        xa = cr.tensor(x, requires_grad=True)
        xb = torch.tensor(x, requires_grad=True)
        ya, yb = ours(xa), theirs(xb)
        np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-6, atol=1e-9)
        upstream = rng.standard_normal(ya.shape)
        ya.backward(upstream)
        yb.backward(torch.tensor(upstream))
        np.testing.assert_allclose(xa.grad, xb.grad.numpy(), rtol=1e-6, atol=1e-9)
        for (pname, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-6, atol=1e-9, err_msg=pname)
        ours.zero_grad()
        theirs.zero_grad()
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(
            ours.state_dict()[key], value.numpy(), rtol=1e-6, atol=1e-9, err_msg=key
        )


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_passes_the_whole_module_gradient_check(name):
    make_ours, _, shape = LAYERS[name]
    rng = np.random.default_rng(1)
    model = make_ours()
    x = rng.standard_normal(shape)
    target = rng.standard_normal(model(cr.tensor(x)).shape)
    report = cr.check_gradients(model, nn.MSELoss(), x, target, verbose=False)
    assert report.passed
    assert {row.name for row in report.rows} == {n for n, _ in model.named_parameters()} | {"input"}
