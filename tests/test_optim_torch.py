"""Optimizers, parameter groups, schedules and clipping against PyTorch (float64, many steps)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.optim import lr_scheduler as sched

# -- PyTorch agreement ---------------------------------------------------------------------------

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")

OPTIMIZERS = {
    "GD": (lambda ps: optim.GD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "SGD-momentum": (
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
    ),
    "SGD-nesterov": (
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    ),
    "Adam": (lambda ps: optim.Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    "Adam-amsgrad-wd": (
        lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True),
        lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True),
    ),
    "AdamW": (
        lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    ),
    "RMSprop": (lambda ps: optim.RMSprop(ps, lr=0.01), lambda ps: torch.optim.RMSprop(ps, lr=0.01)),
    "RMSprop-centered-momentum": (
        lambda ps: optim.RMSprop(
            ps, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01
        ),
        lambda ps: torch.optim.RMSprop(
            ps, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01
        ),
    ),
    "Adagrad": (
        lambda ps: optim.Adagrad(
            ps, lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1
        ),
        lambda ps: torch.optim.Adagrad(
            ps, lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1
        ),
    ),
}


def twin_models(seed=0):
    """The same 5-8-3 network in chainrule and PyTorch, float64, same initial weights."""
    cr.manual_seed(seed)
    ours = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    theirs = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def train_side_by_side(ours, theirs, opt_ours, opt_theirs, steps=25, after_step=None):
    rng = np.random.default_rng(1)
    for step in range(steps):
        x = rng.standard_normal((16, 5))
        y = rng.integers(0, 3, 16)
        for model, opt, tensor, loss_fn in (
            (ours, opt_ours, cr.tensor, nn.functional.cross_entropy),
            (theirs, opt_theirs, torch.tensor, torch.nn.functional.cross_entropy),
        ):
            opt.zero_grad()
            loss_fn(model(tensor(x)), tensor(y)).backward()
            opt.step()
        if after_step:
            after_step(step)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert np.abs(p.detach().numpy() - q.detach().numpy()).max() < 1e-5, name


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_matches_pytorch_over_25_steps(name):
    make_ours, make_theirs = OPTIMIZERS[name]
    ours, theirs = twin_models()
    train_side_by_side(ours, theirs, make_ours(ours.parameters()), make_theirs(theirs.parameters()))


def test_parameter_groups_with_their_own_lr_match_pytorch():
    ours, theirs = twin_models()
    opt_ours = optim.SGD(
        [{"params": ours[0].parameters(), "lr": 0.2}, {"params": ours[2].parameters()}],
        lr=0.01,
        momentum=0.5,
    )
    opt_theirs = torch.optim.SGD(
        [{"params": theirs[0].parameters(), "lr": 0.2}, {"params": theirs[2].parameters()}],
        lr=0.01,
        momentum=0.5,
    )
    train_side_by_side(ours, theirs, opt_ours, opt_theirs)


SCHEDULES = {
    "StepLR": (
        lambda o: sched.StepLR(o, step_size=4, gamma=0.5),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.5),
    ),
    "MultiStepLR": (
        lambda o: sched.MultiStepLR(o, milestones=[3, 10, 7], gamma=0.3),
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[3, 10, 7], gamma=0.3),
    ),
    "ExponentialLR": (
        lambda o: sched.ExponentialLR(o, gamma=0.9),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    ),
    "CosineAnnealingLR": (
        lambda o: sched.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    ),
    "LinearLR": (
        lambda o: sched.LinearLR(o, start_factor=0.1, total_iters=8),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=8),
    ),
    "OneCycleLR": (
        lambda o: sched.OneCycleLR(o, max_lr=0.5, total_steps=25),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=25),
    ),
    "OneCycleLR-3phase-linear": (
        lambda o: sched.OneCycleLR(
            o, max_lr=0.5, epochs=5, steps_per_epoch=5, three_phase=True, anneal_strategy="linear"
        ),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.5, epochs=5, steps_per_epoch=5, three_phase=True, anneal_strategy="linear"
        ),
    ),
}


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_schedule_matches_pytorch_over_25_steps(name, optimizer):
    make_ours, make_theirs = SCHEDULES[name]
    ours, theirs = twin_models()
    if optimizer == "SGD":
        opt_ours = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
        opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    else:
        opt_ours = optim.Adam(ours.parameters(), lr=0.01)
        opt_theirs = torch.optim.Adam(theirs.parameters(), lr=0.01)
    s_ours, s_theirs = make_ours(opt_ours), make_theirs(opt_theirs)

    def after_step(step):
        if step < 24:
            s_ours.step()
            s_theirs.step()
        assert s_ours.get_last_lr() == pytest.approx(s_theirs.get_last_lr(), rel=1e-12)
        key = "betas" if optimizer == "Adam" else "momentum"
        assert opt_ours.param_groups[0][key] == pytest.approx(opt_theirs.param_groups[0][key])

    train_side_by_side(ours, theirs, opt_ours, opt_theirs, after_step=after_step)


def test_reduce_lr_on_plateau_matches_pytorch():
    ours, theirs = twin_models()
    opt_ours = optim.SGD(ours.parameters(), lr=0.1)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1)
    s_ours = sched.ReduceLROnPlateau(opt_ours, factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    s_theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt_theirs, factor=0.5, patience=2, cooldown=1, min_lr=0.01
    )
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85] * 2
    for m in metrics:
        s_ours.step(m)
        s_theirs.step(m)
        assert s_ours.get_last_lr() == pytest.approx(s_theirs.get_last_lr(), rel=1e-12)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_pytorch(norm_type):
    ours, theirs = twin_models()
    x = np.random.default_rng(0).standard_normal((4, 5)) * 10
    ours(cr.tensor(x)).sum().backward()
    theirs(torch.tensor(x)).sum().backward()
    total_ours = nn.utils.clip_grad_norm_(ours.parameters(), 0.5, norm_type)
    total_theirs = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5, norm_type)
    assert float(total_ours) == pytest.approx(float(total_theirs))
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-9, atol=1e-12)
    nn.utils.clip_grad_value_(ours.parameters(), 0.01)
    torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.01)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_a_parameter_without_gradient_takes_the_per_parameter_path():
    """When some gradient is missing the rule runs per parameter (and skips that one), as PyTorch."""
    ours, theirs = twin_models()
    opt_ours = optim.Adam(ours.parameters(), lr=0.01)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=0.01)

    def drop_one_gradient(step):
        if step % 3 == 0:
            for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
                opt.zero_grad()
                model[2].bias.grad = None
                x = np.ones((2, 5))
                t = cr.tensor if model is ours else torch.tensor
                model(t(x)).sum().backward()
                model[2].bias.grad = None
                opt.step()

    train_side_by_side(ours, theirs, opt_ours, opt_theirs, after_step=drop_one_gradient)


def test_replacing_parameter_data_keeps_the_optimizer_in_step():
    ours, theirs = twin_models()
    opt_ours = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)

    def reassign(step):
        if step == 5:  # a user assigns new arrays to .data (chainrule) / copies in (PyTorch)
            ours[0].weight.data = np.zeros((8, 5))
            with torch.no_grad():
                theirs[0].weight.zero_()

    train_side_by_side(ours, theirs, opt_ours, opt_theirs, after_step=reassign)


# -- Adadelta, Adamax, NAdam: PyTorch's trajectory to 1e-10 over many steps ------------------------

NEW_OPTIMIZERS = {
    "Adadelta": ("Adadelta", {}),
    "Adadelta-wd-rho": ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.05}),
    "Adadelta-maximize": ("Adadelta", {"maximize": True}),
    "Adamax": ("Adamax", {}),
    "Adamax-wd-betas": ("Adamax", {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1}),
    "NAdam": ("NAdam", {}),
    "NAdam-wd-momentum-decay": (
        "NAdam",
        {"lr": 0.01, "betas": (0.85, 0.99), "weight_decay": 0.1, "momentum_decay": 0.01},
    ),
    "NAdam-decoupled": ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    "NAdam-maximize": ("NAdam", {"maximize": True}),
}


@pytest.fixture
def torch_float64_scalars():
    """PyTorch keeps some optimizer scalars (NAdam's mu product, the step) in the default dtype:
    float64 here, so that both sides compute in float64 throughout."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("name", NEW_OPTIMIZERS)
def test_new_optimizers_match_pytorch_to_1e10_over_150_steps(name, torch_float64_scalars):
    cls, options = NEW_OPTIMIZERS[name]
    ours, theirs = twin_models()
    opt_ours = getattr(optim, cls)(ours.parameters(), **options)
    opt_theirs = getattr(torch.optim, cls)(theirs.parameters(), **options)
    rng = np.random.default_rng(2)
    for step in range(150):
        x, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
        for model, opt, tensor, loss_fn in (
            (ours, opt_ours, cr.tensor, nn.functional.cross_entropy),
            (theirs, opt_theirs, torch.tensor, torch.nn.functional.cross_entropy),
        ):
            opt.zero_grad()
            loss_fn(model(tensor(x)), tensor(y)).backward()
            if step % 7 == 3:  # some steps without a gradient for one parameter
                model[2].bias.grad = None
            opt.step()
    for (param_name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(
            p.detach().numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=param_name
        )
    assert opt_ours.param_groups[0]["lr"] == opt_theirs.param_groups[0]["lr"]


@pytest.mark.parametrize("cls", ["Adadelta", "Adamax", "NAdam"])
def test_new_optimizers_have_pytorch_defaults(cls):
    ours = getattr(optim, cls)([nn.Parameter(np.zeros(2))]).param_groups[0]
    theirs = getattr(torch.optim, cls)([torch.zeros(2, requires_grad=True)]).param_groups[0]
    for key, value in ours.items():
        if key != "params":
            assert theirs[key] == value, key


@pytest.mark.parametrize(
    "cls, options, message",
    [
        ("Adadelta", {"rho": 1.5}, "rho"),
        ("Adadelta", {"eps": -1.0}, "eps"),
        ("Adamax", {"betas": (1.0, 0.9)}, "beta1"),
        ("Adamax", {"weight_decay": -0.1}, "weight_decay"),
        ("NAdam", {"betas": (0.9, 1.0)}, "beta2"),
        ("NAdam", {"momentum_decay": -1.0}, "momentum_decay"),
        ("NAdam", {"lr": -1.0}, "learning rate"),
    ],
)
def test_new_optimizers_refuse_what_pytorch_refuses(cls, options, message):
    with pytest.raises(ValueError):
        getattr(torch.optim, cls)([torch.zeros(2, requires_grad=True)], **options)
    with pytest.raises(ValueError, match=message):
        getattr(optim, cls)([nn.Parameter(np.zeros(2))], **options)
