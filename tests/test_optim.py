"""Optimizers and schedules: golden values, PyTorch agreement over many steps, state, errors."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim

# -- golden one-step values (no torch needed) ----------------------------------------------------

P0, G = np.array([1.0, -2.0]), np.array([0.5, 0.1])


def one_step(make, steps=1):
    p = nn.Parameter(P0.copy())
    opt = make([p])
    for _ in range(steps):
        p.grad = G.copy()
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda ps: optim.GD(ps, lr=0.1), [0.95, -2.01]),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), [0.95, -2.01]),
        (lambda ps: optim.Adam(ps, lr=0.1), P0 - 0.1 * G / (np.abs(G) + 1e-8)),
        (
            lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0.1),
            P0 * 0.99 - 0.1 * G / (np.abs(G) + 1e-8),
        ),
        (lambda ps: optim.RMSprop(ps, lr=0.01), P0 - 0.01 * G / (0.1 * np.abs(G) + 1e-8)),
        (lambda ps: optim.Adagrad(ps, lr=0.1), P0 - 0.1 * G / (np.abs(G) + 1e-10)),
    ],
    ids=["GD", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"],
)
def test_golden_first_step(make, expected):
    np.testing.assert_allclose(one_step(make), expected, rtol=1e-12)


def test_golden_second_momentum_step():
    # b1 = g, b2 = 0.9 g + g = 1.9 g: p = p0 - 0.1 g - 0.19 g
    np.testing.assert_allclose(
        one_step(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 2), P0 - 0.29 * G, rtol=1e-12
    )


def test_schedule_as_a_function_of_the_step():
    np.testing.assert_allclose(
        one_step(lambda ps: optim.GD(ps, lr=lambda t: 0.1 / t), 2), P0 - 0.15 * G, rtol=1e-12
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ps: optim.SGD(ps, lr=-0.1), "learning rate"),
        (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "beta1"),
        (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "beta2"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=-1), "momentum"),
        (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
        (lambda ps: optim.RMSprop(ps, alpha=1.5), "alpha"),
        (lambda ps: optim.Adam(ps, eps=-1), "eps"),
        (lambda ps: optim.Adagrad(ps, lr_decay=-1), "lr_decay"),
        (lambda ps: optim.Adam([], lr=0.1), "empty"),
    ],
)
def test_bad_hyper_parameters_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter(np.zeros(2))] if "empty" not in message else [])


def test_optimizer_state_dict_round_trip_continues_identically():
    def run(split):
        cr.manual_seed(0)
        model = nn.Linear(4, 3)
        opt = optim.Adam(model.parameters(), lr=0.05, amsgrad=True)
        x, y = cr.randn(8, 4), np.arange(8) % 3
        for step in range(10):
            if step == split:
                model_state, opt_state = model.state_dict(), opt.state_dict()
                model = nn.Linear(4, 3)
                opt = optim.Adam(model.parameters(), lr=0.05, amsgrad=True)
                model.load_state_dict(model_state)
                opt.load_state_dict(opt_state)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return model.weight.detach().numpy()

    np.testing.assert_array_equal(run(split=None), run(split=5))


def test_optimizer_state_dict_holds_only_plain_values():
    model = nn.Linear(2, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(cr.randn(3, 2)).sum().backward()
    opt.step()
    state = opt.state_dict()
    for entry in state["state"].values():
        assert all(isinstance(v, (np.ndarray, int, float, type(None))) for v in entry.values())
    assert state["param_groups"][0]["params"] == [0, 1]
    with pytest.raises(ValueError, match="do not match"):
        optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1).load_state_dict(state)


# -- golden three-step values of Adadelta, Adamax, NAdam (from PyTorch 2.13 in float64) ------------


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda ps: optim.Adadelta(ps), [0.9902926865068471, -2.009702553737029]),
        (
            lambda ps: optim.Adadelta(ps, lr=0.5, rho=0.8, weight_decay=0.1),
            [0.99648261028475, -1.996485195720923],
        ),
        # a constant gradient keeps Adamax's step at lr g / (|g| + eps): three equal steps
        (lambda ps: optim.Adamax(ps), P0 - 3 * 2e-3 * G / (np.abs(G) + 1e-8)),
        (
            lambda ps: optim.Adamax(ps, lr=0.01, weight_decay=0.1),
            [0.9699966128199139, -1.9701297148129548],
        ),
        (lambda ps: optim.NAdam(ps), [0.9948552935695358, -2.005144706018888]),
        (
            lambda ps: optim.NAdam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
            [0.971308422161717, -2.019700572782717],
        ),
    ],
    ids=["Adadelta", "Adadelta-wd", "Adamax", "Adamax-wd", "NAdam", "NAdam-decoupled"],
)
def test_golden_three_steps(make, expected):
    np.testing.assert_allclose(one_step(make, steps=3), expected, rtol=1e-12)


def test_nadam_state_dict_round_trip_continues_identically():
    def run(split):
        cr.manual_seed(0)
        model = nn.Linear(4, 3).double()
        opt = optim.NAdam(model.parameters(), lr=0.05)
        x, y = cr.randn(8, 4, dtype="float64"), np.arange(8) % 3
        for step in range(10):
            if step == split:
                model_state, opt_state = model.state_dict(), opt.state_dict()
                model = nn.Linear(4, 3).double()
                opt = optim.NAdam(model.parameters(), lr=0.05)
                model.load_state_dict(model_state)
                opt.load_state_dict(opt_state)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return model.weight.detach().numpy()

    np.testing.assert_array_equal(run(split=None), run(split=5))


ALL_OPTIMIZERS = [
    optim.GD,
    optim.SGD,
    optim.Adam,
    optim.AdamW,
    optim.RMSprop,
    optim.Adagrad,
    optim.Adadelta,
    optim.Adamax,
    optim.NAdam,
]


@pytest.mark.parametrize("cls", ALL_OPTIMIZERS, ids=lambda c: c.__name__)
def test_optimizer_follows_model_double_made_after_it(cls):
    """model.double() after the optimizer was built: zero_grad(set_to_none=False), the gradient
    gathering (what MPI all-reduces) and step all use the new float64 layout, and the run ends
    where one whose optimizer was built after the change ends."""
    from chainrule.train import fit

    x = np.random.default_rng(0).normal(size=(48, 4))
    y = np.random.default_rng(1).integers(0, 3, 48)
    finals = []
    for build_first in (True, False):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
        if build_first:
            optimizer = cls(model.parameters(), lr=0.01)
            model.double()
        else:
            model.double()
            optimizer = cls(model.parameters(), lr=0.01)
        fit(
            model, nn.CrossEntropyLoss(), optimizer, (x, y), epochs=2, batch_size=16, progress=False
        )
        assert all(g.dtype == np.float64 for g in optimizer.gather_gradients())
        finals.append([p.detach().numpy().copy() for p in model.parameters()])
    for a, b in zip(*finals):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)


def test_every_optimizer_describes_its_settings_and_rebuilds_from_them():
    """Each optimizer class's settings have defaults from its constructor and ranges that
    hold them; the call text written from settings rebuilds an equal optimizer."""
    from chainrule.optim import spec

    model = nn.Linear(3, 2)
    for name, cls in optim.OPTIMIZER_CLASSES.items():
        settings = spec.settings_of(cls)
        assert settings and settings[0].name == "lr", name
        for setting in settings:
            assert setting.help, (name, setting.name)
            setting.check(setting.default)  # the constructor's default lies in the range
        values = {s.name: s.default for s in settings}
        values["lr"] = cls.suggested_lr
        built = spec.build(cls, model.parameters(), values)
        text = spec.call_text(cls, values, "parameters")
        again = eval(text, {"optim": optim, "parameters": model.parameters()})  # noqa: S307
        assert repr(again) == repr(built), name


def test_a_setting_out_of_its_range_is_refused_by_name():
    from chainrule.optim import spec

    with pytest.raises(ValueError, match=r"beta2 must be in \[0, 1\), got 1.5"):
        spec.build(optim.Adam, nn.Linear(2, 2).parameters(), {"beta2": 1.5})
    with pytest.raises(ValueError, match="Adam has no setting 'rho'"):
        spec.build(optim.Adam, nn.Linear(2, 2).parameters(), {"rho": 0.5})
