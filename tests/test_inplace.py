"""In-place operations, version counters and .grad as a tensor, checked against PyTorch's rules."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim

torch = pytest.importorskip("torch")


def twins(*arrays, requires_grad=True):
    """The same float64 leaves in chainrule and PyTorch."""
    ours = [cr.tensor(a, dtype="float64", requires_grad=requires_grad) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad) for a in arrays]
    return ours, theirs


def assert_same_grads(ours, theirs):
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_gradient_descent_by_hand_updates_the_parameters_in_place():
    cr.manual_seed(0)
    x = cr.linspace(-1, 1, 50)
    y = 3 * x - 1
    model = nn.Linear(1, 1)
    weight_storage = model.weight.detach().numpy()
    losses = []
    for _ in range(200):
        loss = ((model(x[:, None]).squeeze(1) - y) ** 2).mean()
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with cr.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad  # the first thing every learner writes
    assert losses[-1] < 1e-3 < losses[0]
    assert model.weight.detach().numpy() is weight_storage  # the same storage, changed in place
    assert abs(model.weight.item() - 3) < 0.05 and abs(model.bias.item() + 1) < 0.05


def test_in_place_on_a_leaf_that_requires_grad_needs_no_grad():
    w = cr.ones(3, requires_grad=True)
    for change in (lambda: w.__isub__(1.0), lambda: w.add_(1), lambda: w.zero_()):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            change()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w[0] = 5.0
    with cr.no_grad():
        w -= 1.0
        w[1] = 7.0
    np.testing.assert_array_equal(w.detach().numpy(), [0.0, 7.0, 0.0])
    assert w.is_leaf and w.requires_grad


def test_a_saved_value_changed_in_place_stops_backward_with_the_op_named():
    w = cr.ones(3, requires_grad=True)
    a = w * 2
    b = a.exp()  # Exp saves its output
    b.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation.*Exp"):
        b.sum().backward()
    # the same in PyTorch
    tw = torch.ones(3, requires_grad=True)
    tb = (tw * 2).exp()
    tb.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tb.sum().backward()


def test_changing_an_input_that_was_not_saved_is_fine_as_in_pytorch():
    (w,), (tw,) = twins(np.array([0.5, -1.0, 2.0]))
    for v in (w, tw):
        a = v * 2
        b = a.exp()  # saves its output, not a
        a.add_(1)
        b.sum().backward()
    assert_same_grads([w], [tw])


def test_an_optimizer_step_between_forward_and_backward_is_detected():
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = model(cr.ones(4, 2)).sum()
    loss.backward(retain_graph=True)
    opt.step()  # changes the weight that Linear saved
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_recorded_in_place_ops_on_intermediate_tensors_match_pytorch():
    (x, w), (tx, tw) = twins(np.array([0.3, -0.7, 1.1]), np.array([2.0, -0.5, 0.25]))
    for a, b in ((x, w), (tx, tw)):
        y = a * 2
        y += 1
        y *= b  # Mul reads the old y: it gets its own copy
        y -= a
        y /= 2.0
        y.pow_(2)
        y.clamp_(max=1.5)
        y.sum().backward()
    assert_same_grads([x, w], [tx, tw])


def test_index_assignment_and_in_place_through_indexing_views_match_pytorch():
    (x, w), (tx, tw) = twins(np.arange(6.0).reshape(2, 3) / 5, np.array([0.5, -2.0, 3.0]))
    outputs = []
    for a, b, lib in ((x, w, cr), (tx, tw, torch)):
        h = a * 1.5
        h[0] += b  # through a view: written back into h
        h[:, 1] *= 2
        h[1, 2] = b[0] ** 2
        out = lib.zeros(3, dtype=lib.float64)
        out[0] = b[1] * 3
        out[1:] = h[1, :2]
        loss = (h * h).sum() + (out * out).sum()
        loss.backward()
        outputs.append(loss.item())
    assert outputs[0] == pytest.approx(outputs[1], rel=1e-12)
    assert_same_grads([x, w], [tx, tw])


def test_in_place_through_a_reshape_view_under_autograd_is_refused_clearly():
    w = cr.ones(4, requires_grad=True)
    v = (w * 2).reshape(2, 2)
    with pytest.raises(RuntimeError, match="view made by reshape"):
        v += w.reshape(2, 2)


def test_views_share_storage_and_version_counter():
    x = cr.zeros(2, 3)
    row, flat, alias = x[0], x.view(6), x.detach()
    before = x._version
    x.add_(1)
    assert row.numpy().sum() == 3 and flat.numpy().sum() == 6 and alias.numpy().sum() == 6
    assert x._version == row._version == flat._version == alias._version == before + 1
    row.zero_()
    assert x.numpy()[0].sum() == 0 and x._version == before + 2


def test_in_place_results_must_fit_the_tensors_type():
    counts = cr.zeros(3, dtype=cr.long)
    with pytest.raises(RuntimeError, match="can't be cast"):
        counts += 1.5
    with pytest.raises(RuntimeError, match="can't be cast"):
        counts /= 2
    counts += 2
    assert counts.dtype == cr.long and counts.tolist() == [2, 2, 2]
    x = cr.ones(3)
    x += cr.ones(3, dtype=cr.double)  # the result is stored back as float32
    assert x.dtype == cr.float32 and x.tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(RuntimeError, match="shape"):
        x += cr.ones(2, 3)


def test_in_place_methods_match_pytorch():
    base = np.linspace(-2, 2, 12).reshape(3, 4)
    mask = base > 0.5
    checks = [
        lambda t, m: t.zero_(),
        lambda t, m: t.fill_(2.5),
        lambda t, m: t.copy_(m.tensor([1.0, 2.0, 3.0, 4.0], dtype=m.float64)),
        lambda t, m: t.clamp_(-1, 0.5),
        lambda t, m: t.clamp_(min=0),
        lambda t, m: t.masked_fill_(m.tensor(mask), -7.0),
        lambda t, m: t.add_(m.ones(4, dtype=m.float64), alpha=3),
        lambda t, m: t.sub_(1.5),
        lambda t, m: t.mul_(m.arange(4)),
        lambda t, m: t.div_(4),
        lambda t, m: t.neg_(),
        lambda t, m: t.abs_(),
        lambda t, m: t.abs_().sqrt_(),
        lambda t, m: t.exp_(),
    ]
    for change in checks:
        ours, theirs = cr.tensor(base), torch.tensor(base)
        returned = change(ours, cr)
        change(theirs, torch)
        assert returned is ours
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_random_fills_and_requires_grad_():
    t = cr.empty(1000)
    cr.manual_seed(0)
    t.normal_(2.0, 0.5)
    assert abs(t.mean().item() - 2) < 0.1 and abs(t.numpy().std() - 0.5) < 0.05
    t.uniform_(-1, 1)
    assert t.numpy().min() >= -1 and t.numpy().max() < 1
    assert t.requires_grad_() is t and t.requires_grad
    with pytest.raises(RuntimeError, match="floating-point"):
        cr.zeros(2, dtype=cr.long).requires_grad_()


def test_grad_is_a_tensor_sharing_the_optimizers_gradient_memory():
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters())
    opt.zero_grad(set_to_none=False)
    model(cr.ones(4, 3)).sum().backward()
    g = model.weight.grad
    assert isinstance(g, cr.Tensor) and g.shape == (2, 3)
    assert np.shares_memory(g.numpy(), opt.flat[0].grads)  # backward wrote into the flat array
    assert g.numpy().sum() != 0
    g.zero_()
    assert model.weight.grad.numpy().sum() == 0 and opt.flat[0].grads[:6].sum() == 0
    model.weight.grad = None
    assert model.weight.grad is None
    with pytest.raises(RuntimeError, match="shape"):
        model.weight.grad = cr.zeros(3, 3)


def test_the_optimizer_never_rebinds_parameter_data():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    held = [p.detach().numpy() for p in model.parameters()]
    initial = [a.copy() for a in held]
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        model(cr.ones(2, 3)).sum().backward()
        opt.step()
    assert all(p.detach().numpy() is array for p, array in zip(model.parameters(), held))
    assert any(not np.array_equal(a, b) for a, b in zip(held, initial))  # and they did change


def test_model_double_after_building_the_optimizer_is_followed_not_undone():
    cr.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = optim.Adam(model.parameters(), lr=0.1)
    model.double()  # before any step: the optimizer follows
    opt.zero_grad()
    model(cr.ones(2, 3, dtype=cr.double)).sum().backward()
    opt.step()
    assert model.weight.dtype == cr.float64 and model.weight.grad.dtype == cr.float64
    model.float()  # after the state exists: refused clearly
    with pytest.raises(RuntimeError, match="changed from float64.*to float32"):
        opt.step()
