"""Losses: values and gradients against PyTorch for every reduction, stability, clear errors."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

rng = np.random.default_rng(0)
N, C = 7, 5


def regression():
    return rng.standard_normal((N, 3)) * 2, rng.standard_normal((N, 3)) * 2


def labels():
    return rng.standard_normal((N, C)) * 3, rng.integers(0, C, N)


def probabilities():
    target = rng.random((N, C))
    return rng.standard_normal((N, C)) * 3, target / target.sum(1, keepdims=True)


def binary_probs():
    return rng.uniform(0.05, 0.95, (N, 3)), (rng.random((N, 3)) < 0.5).astype(float)


def binary_logits():
    return rng.standard_normal((N, 3)) * 4, (rng.random((N, 3)) < 0.5).astype(float)


def log_probs():
    x, y = labels()
    return x - np.log(np.exp(x).sum(1, keepdims=True)), y


CASES = {
    "mse": (F.mse_loss, "mse_loss", regression, {}),
    "l1": (F.l1_loss, "l1_loss", regression, {}),
    "huber": (F.huber_loss, "huber_loss", regression, {"delta": 1.5}),
    "cross_entropy": (F.cross_entropy, "cross_entropy", labels, {}),
    "cross_entropy-smoothing": (
        F.cross_entropy,
        "cross_entropy",
        labels,
        {"label_smoothing": 0.2},
    ),
    "cross_entropy-probs": (F.cross_entropy, "cross_entropy", probabilities, {}),
    "cross_entropy-probs-smoothing": (
        F.cross_entropy,
        "cross_entropy",
        probabilities,
        {"label_smoothing": 0.1},
    ),
    "nll": (F.nll_loss, "nll_loss", log_probs, {}),
    "bce": (F.binary_cross_entropy, "binary_cross_entropy", binary_probs, {}),
    "bce_with_logits": (
        F.binary_cross_entropy_with_logits,
        "binary_cross_entropy_with_logits",
        binary_logits,
        {},
    ),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_matches_pytorch(name, reduction):
    torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")
    ours_fn, torch_name, make, options = CASES[name]
    torch_fn = getattr(torch.nn.functional, torch_name)
    x, y = make()
    xa, xb = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    la = ours_fn(xa, y, reduction=reduction, **options)
    lb = torch_fn(xb, torch.tensor(y), reduction=reduction, **options)
    np.testing.assert_allclose(la.detach().numpy(), lb.detach().numpy(), rtol=1e-6, atol=1e-12)
    upstream = rng.standard_normal(la.shape)
    la.backward(upstream)
    lb.backward(torch.tensor(upstream))
    np.testing.assert_allclose(xa.grad, xb.grad.numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_loss_passes_gradcheck(name):
    ours_fn, _, make, options = CASES[name]
    x, y = make()
    assert cr.gradcheck(lambda t: ours_fn(t, y, **options), cr.tensor(x, requires_grad=True))


@pytest.mark.parametrize(
    "module, function",
    [
        (nn.MSELoss, F.mse_loss),
        (nn.L1Loss, F.l1_loss),
        (nn.CrossEntropyLoss, F.cross_entropy),
        (nn.BCEWithLogitsLoss, F.binary_cross_entropy_with_logits),
    ],
)
def test_loss_modules_wrap_the_functions(module, function):
    x, y = labels() if module is nn.CrossEntropyLoss else binary_logits()
    for reduction in ("mean", "sum", "none"):
        expected = function(cr.tensor(x), y, reduction=reduction).numpy()
        np.testing.assert_array_equal(
            module(reduction=reduction)(cr.tensor(x), y).numpy(), expected
        )


def test_cross_entropy_gradient_is_softmax_minus_target():
    x, y = labels()
    logits = cr.tensor(x, requires_grad=True)
    F.cross_entropy(logits, y, reduction="sum").backward()
    softmax = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    np.testing.assert_allclose(logits.grad, softmax - np.eye(C)[y], rtol=1e-10)


def test_losses_are_stable_for_huge_logits():
    x = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    ce = F.cross_entropy(cr.tensor(x, requires_grad=True), np.array([1, 1]))
    assert np.isfinite(ce.item()) and ce.item() == pytest.approx(1000.0)
    logits = cr.tensor(x, requires_grad=True)
    bce = F.binary_cross_entropy_with_logits(logits, np.array([[1.0, 0.0], [1.0, 0.0]]))
    bce.backward()
    assert bce.item() == pytest.approx(500.0) and np.all(np.isfinite(logits.grad))
    p = cr.tensor(np.array([0.0, 1.0]), requires_grad=True)
    bce = F.binary_cross_entropy(p, np.array([1.0, 1.0]))
    bce.backward()
    assert bce.item() == pytest.approx(50.0) and np.all(np.isfinite(p.grad))


def test_bad_labels_get_clear_errors():
    x, y = labels()
    with pytest.raises(ValueError, match=r"label 5 is out of range for 5 classes"):
        F.cross_entropy(cr.tensor(x), np.full(N, 5))
    with pytest.raises(ValueError, match="out of range"):
        F.nll_loss(cr.tensor(x), np.full(N, -1))
    with pytest.raises(TypeError, match="must be integers"):
        F.cross_entropy(cr.tensor(x), y.astype(np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        F.cross_entropy(cr.tensor(x), y[:3])
    with pytest.raises(ValueError, match=r"\(7, 3\).*\(7, 2\)"):
        F.mse_loss(cr.randn(7, 3), np.zeros((7, 2)))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="average")
    with pytest.raises(ValueError, match="probabilities"):
        F.binary_cross_entropy(cr.tensor([1.5]), np.array([1.0]))


@pytest.mark.parametrize(
    "loss, make_target",
    [
        (nn.MSELoss(), lambda rng: rng.standard_normal((6, 3))),
        (nn.L1Loss(), lambda rng: rng.standard_normal((6, 3))),
        (nn.HuberLoss(delta=0.5), lambda rng: rng.standard_normal((6, 3))),
        (nn.CrossEntropyLoss(label_smoothing=0.1), lambda rng: rng.integers(0, 3, 6)),
        (nn.BCEWithLogitsLoss(), lambda rng: (rng.random((6, 3)) < 0.5).astype(float)),
    ],
    ids=["MSELoss", "L1Loss", "HuberLoss", "CrossEntropyLoss", "BCEWithLogitsLoss"],
)
def test_loss_modules_pass_the_whole_module_gradient_check(loss, make_target):
    rng = np.random.default_rng(3)
    cr.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    report = cr.check_gradients(
        model, loss, rng.standard_normal((6, 4)), make_target(rng), verbose=False
    )
    assert report.passed and len(report.rows) == 5


def test_probability_losses_pass_the_whole_module_gradient_check():
    rng = np.random.default_rng(4)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())
    target = (rng.random((6, 3)) < 0.5).astype(float)
    assert cr.check_gradients(
        model, nn.BCELoss(), rng.standard_normal((6, 4)), target, verbose=False
    )
    model = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    assert cr.check_gradients(
        model, nn.NLLLoss(), rng.standard_normal((6, 4)), rng.integers(0, 3, 6), verbose=False
    )
