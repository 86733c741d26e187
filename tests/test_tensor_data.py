"""``Tensor.data`` as PyTorch's: a tensor over the same storage, outside autograd (issue 21)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")


def twin_models():
    """The same float64 two-layer network in chainrule and PyTorch."""
    rng = np.random.default_rng(0)
    ours = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).double()
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            values = rng.standard_normal(tuple(p.shape))
            p.data = values
            q.copy_(torch.from_numpy(values))
    return ours, theirs


def test_manual_sgd_through_data_trains_as_pytorch():
    ours, theirs = twin_models()
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    lr, losses = 0.5, []
    for _ in range(5):
        loss = nn.functional.cross_entropy(ours(cr.tensor(x)), cr.tensor(labels))
        their_loss = torch.nn.functional.cross_entropy(
            theirs(torch.from_numpy(x)), torch.from_numpy(labels)
        )
        loss.backward()
        their_loss.backward()
        for p in ours.parameters():  # as published: no no_grad, no optimizer
            p.data.add_(p.grad.data, alpha=-lr)
            p.grad.data.zero_()
        for q in theirs.parameters():
            q.data.add_(q.grad.data, alpha=-lr)
            q.grad.data.zero_()
        losses.append(loss.item())
        assert loss.item() == pytest.approx(their_loss.item(), rel=1e-10)
    assert losses[-1] < losses[0]
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12)
        assert not p.grad.numpy().any()


def test_data_is_a_plain_tensor_outside_autograd():
    weight = nn.Linear(3, 2).weight
    data = weight.data
    assert type(data) is cr.Tensor and isinstance(weight, nn.Parameter)
    assert not data.requires_grad and data.grad_fn is None and data.is_leaf
    y = weight * 2
    assert y.grad_fn is not None and y.data.grad_fn is None and not y.data.requires_grad
    assert (y.data * 3).grad_fn is None  # ops on it record nothing


def test_data_shares_the_storage_both_ways():
    p = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    p.data[0] = 5.0  # writing through, as PyTorch
    p.data.clamp_(max=4.0)
    assert p.tolist() == [4.0, 2.0, 3.0]
    with cr.no_grad():
        p.mul_(2)
    assert p.data.tolist() == [8.0, 4.0, 6.0]
    array = p.data.numpy()
    array[1] = -1.0
    assert p.tolist() == [8.0, -1.0, 6.0] and np.shares_memory(array, p.detach().numpy())
    p.data.copy_(cr.tensor([0.5, 0.5, 0.5]))
    assert p.tolist() == [0.5, 0.5, 0.5]


def test_numpy_views_and_copies_of_a_tensor():
    t = cr.tensor([1.0, 2.0])
    assert np.asarray(t) is t.numpy() and np.shares_memory(t.data.numpy(), t.numpy())
    copied = np.array(t)
    copied[0] = 9.0
    assert t.tolist() == [1.0, 2.0]  # np.array copies, as for any array-like
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("shape", [(2, 3), (5,)])
def test_assigning_data_replaces_the_storage_as_pytorch(shape):
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    ours.weight.data = cr.from_numpy(values)
    theirs.weight.data = torch.from_numpy(values)
    for p, q in ((ours.weight, theirs.weight), (ours.bias, theirs.bias)):
        assert tuple(p.shape) == tuple(q.shape) and p.requires_grad == q.requires_grad
    assert isinstance(ours.weight, nn.Parameter) and ours.weight.tolist() == values.tolist()
    values[0] = -1.0  # the tensor assigned shares its storage, as in PyTorch
    assert ours.weight.tolist() == theirs.weight.tolist()
    ours.bias.data = np.zeros(2)  # an array is accepted too
    assert ours.bias.dtype == np.float64 and isinstance(ours.bias, nn.Parameter)


def test_writes_through_data_bypass_the_leaf_check_and_the_version_counter():
    ours = cr.tensor([1.0, 2.0, 3.0], dtype=cr.float64, requires_grad=True)
    theirs = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    for w, error in ((ours, RuntimeError), (theirs, RuntimeError)):
        with pytest.raises(error, match="leaf"):
            w.add_(1.0)  # the plain in-place on a leaf that requires grad is still refused
    losses = [(ours * ours).sum() + ours.exp().sum(), (theirs * theirs).sum() + theirs.exp().sum()]
    ours.data.mul_(2)  # after the forward pass: a later backward still runs, as PyTorch's
    theirs.data.mul_(2)
    assert ours._version == theirs._version == 0
    for loss in losses:
        loss.backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)


def test_topk_and_max_of_output_data_as_pytorch():
    values = np.random.default_rng(2).standard_normal((4, 5))
    output = cr.tensor(values, requires_grad=True) * 2
    expected = torch.tensor(values, requires_grad=True) * 2
    top, their_top = output.data.topk(1), expected.data.topk(1)
    np.testing.assert_allclose(top.values.numpy(), their_top.values.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(top.indices.numpy(), their_top.indices.numpy())
    _, predicted = cr.max(output.data, 1)
    np.testing.assert_array_equal(predicted.numpy(), torch.max(expected.data, 1)[1].numpy())


def test_grad_data_zero_clears_the_gradient_the_optimizer_reads():
    model = nn.Linear(3, 2)
    optimizer = cr.optim.SGD(model.parameters(), lr=0.1)
    model(cr.ones(4, 3)).sum().backward()
    optimizer.step()  # the optimizer now holds the gradients in its flat buffer
    model(cr.ones(4, 3)).sum().backward()
    before = model.weight.detach().numpy().copy()
    for p in model.parameters():
        p.grad.data.zero_()
    optimizer.step()
    np.testing.assert_array_equal(model.weight.detach().numpy(), before)
