"""LBFGS: the same trajectory as PyTorch's (a Rosenbrock function and a small least-squares
model, with and without the strong Wolfe line search, 25 steps, to 1e-10), its state saved and
restored, its settings described, bad settings refused."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.optim import spec

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")


def rosenbrock(v):
    """f and its gradient, computed once in NumPy for both libraries: the comparison is then of
    the optimizers alone (the two autograds differ in the last bit, and fixed L-BFGS steps on
    Rosenbrock's valley magnify any difference)."""
    x, y = v
    f = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    return f, np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def rosenbrock_runs(line_search_fn, start, steps=25, **options):
    """(PyTorch's points, ours, PyTorch's optimizer, ours) after each of ``steps`` steps."""
    p_theirs = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    p_ours = nn.Parameter(np.array(start))
    theirs = torch.optim.LBFGS([p_theirs], line_search_fn=line_search_fn, **options)
    ours = optim.LBFGS([p_ours], line_search_fn=line_search_fn, **options)

    def closure_theirs():
        f, g = rosenbrock(p_theirs.detach().numpy())
        p_theirs.grad = torch.tensor(g)
        return torch.tensor(f)

    def closure_ours():
        f, g = rosenbrock(p_ours.detach().numpy())
        p_ours.grad = cr.tensor(g)
        return cr.tensor(f)

    points = [], []
    for _ in range(steps):
        loss_theirs, loss_ours = theirs.step(closure_theirs), ours.step(closure_ours)
        assert abs(float(loss_theirs) - float(loss_ours)) <= 1e-10 * max(1, float(loss_theirs))
        points[0].append(p_theirs.detach().numpy().copy())
        points[1].append(p_ours.detach().numpy().copy())
    return np.array(points[0]), np.array(points[1]), theirs.state[p_theirs], ours.state[0]


@pytest.mark.parametrize(
    "line_search_fn, start, options",
    [
        (None, (0.0, 0.0), {"lr": 0.1}),
        (None, (-1.5, 2.0), {"lr": 0.3, "max_iter": 2}),
        ("strong_wolfe", (-1.5, 2.0), {}),
        ("strong_wolfe", (-1.5, 2.0), {"lr": 0.5, "max_iter": 7}),
    ],
)
def test_rosenbrock_trajectory_matches_pytorch(line_search_fn, start, options):
    theirs, ours, state_theirs, state_ours = rosenbrock_runs(line_search_fn, start, **options)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    assert state_ours["func_evals"] == state_theirs["func_evals"]
    assert state_ours["n_iter"] == state_theirs["n_iter"] >= 25


def test_rosenbrock_reaches_the_minimum_with_the_line_search():
    _, ours, _, _ = rosenbrock_runs("strong_wolfe", (-1.5, 2.0), steps=5)
    np.testing.assert_allclose(ours[-1], [1.0, 1.0], atol=1e-4)


def least_squares(lib, seed=0):
    """A Linear(4, 2) model and its data in float64, the same weights in either library."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(20, 4))
    y = x @ rng.normal(size=(4, 2)) + 0.1 * rng.normal(size=(20, 2))
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 2).double()
    if lib is cr:
        weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        model = nn.Linear(4, 2).double()
        model.load_state_dict(weights)
    return model, lib.tensor(x), lib.tensor(y)


def least_squares_run(lib, steps, line_search_fn=None, split=None, **options):
    """The model's weights after each step; at step ``split`` the optimizer is rebuilt from its
    state_dict (ours only)."""
    model, x, y = least_squares(lib)
    make = lib.optim.LBFGS
    optimizer = make(model.parameters(), line_search_fn=line_search_fn, **options)

    def closure():
        optimizer.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    trajectory = []
    for step in range(steps):
        if step == split:
            saved = optimizer.state_dict()
            optimizer = make(model.parameters(), line_search_fn=line_search_fn, **options)
            optimizer.load_state_dict(saved)
        optimizer.step(closure)
        trajectory.append(np.concatenate([p.detach().numpy().ravel() for p in model.parameters()]))
    return np.array(trajectory), optimizer


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("options", [{"max_iter": 3, "history_size": 2}, {"lr": 0.5}])
def test_least_squares_trajectory_matches_pytorch(line_search_fn, options):
    theirs, _ = least_squares_run(torch, 25, line_search_fn, **options)
    ours, optimizer = least_squares_run(cr, 25, line_search_fn, **options)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    assert optimizer.state[0]["n_iter"] >= 25
    solution = np.linalg.lstsq(
        np.c_[least_squares(cr)[1].numpy(), np.ones(20)], least_squares(cr)[2].numpy(), rcond=None
    )[0]
    np.testing.assert_allclose(ours[-1][:8].reshape(2, 4), solution[:4].T, atol=1e-4)


def test_state_dict_round_trip_continues_identically(tmp_path):
    whole, _ = least_squares_run(cr, 6, "strong_wolfe", max_iter=2, history_size=3)
    split, optimizer = least_squares_run(cr, 6, "strong_wolfe", split=3, max_iter=2, history_size=3)
    np.testing.assert_array_equal(split, whole)
    state = optimizer.state_dict()
    assert len(state["state"][0]["old_dirs"]) == 3 and state["step_count"] == 6
    # the history survives a file, and a model of another size is refused in one line
    cr.save(state, tmp_path / "lbfgs.safetensors")
    loaded = cr.load(tmp_path / "lbfgs.safetensors")
    np.testing.assert_array_equal(
        loaded["state"][0]["old_stps"][1], state["state"][0]["old_stps"][1]
    )
    other = optim.LBFGS(nn.Linear(3, 2).parameters())
    with pytest.raises(ValueError, match="state 'd' has a vector of shape"):
        other.load_state_dict(loaded)


def test_float32_parameters_stay_float32():
    model, x, y = least_squares(cr)
    model.float()
    optimizer = optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x.float()), y.float())
        loss.backward()
        return loss

    first = optimizer.step(closure).item()
    assert optimizer.step(closure).item() < 0.01 * first
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_lbfgs_describes_its_settings():
    assert optim.OPTIMIZER_CLASSES["lbfgs"] is optim.LBFGS
    defaults = {s.name: s.default for s in spec.settings_of(optim.LBFGS)}
    assert defaults == {
        "lr": 1,
        "max_iter": 20,
        "history_size": 100,
        "tolerance_grad": 1e-7,
        "tolerance_change": 1e-9,
    }
    optimizer = spec.build(optim.LBFGS, [nn.Parameter(np.zeros(2))], {"max_iter": 5.0})
    assert optimizer.param_groups[0]["max_iter"] == 5 and optimizer.param_groups[0]["max_eval"] == 6
    assert isinstance(optimizer.param_groups[0]["max_iter"], int)
    assert spec.call_text(optim.LBFGS, {"history_size": 10}).endswith("history_size=10)")
    with pytest.raises(ValueError, match="max_iter must be a whole number"):
        spec.arguments(optim.LBFGS, {"max_iter": 2.5})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"line_search_fn": "armijo"}, "line_search_fn must be None or 'strong_wolfe'"),
        ({"max_iter": 0}, "max_iter must be a whole number >= 1"),
        ({"history_size": 2.5}, "history_size must be a whole number"),
        ({"tolerance_grad": -1}, "tolerance_grad"),
        ({"lr": -1}, "learning rate"),
    ],
)
def test_bad_settings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        optim.LBFGS([nn.Parameter(np.zeros(2))], **options)


def test_one_parameter_group_and_a_closure_are_required():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": [a]}, {"params": [b], "lr": 0.1}])
    with pytest.raises(ValueError, match="needs a closure"):
        optim.LBFGS([a]).step()
