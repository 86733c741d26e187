"""The update rules themselves: Adam's fused whole-group form equals its textbook form, and Adam's
multi-step values are pinned by an independent scalar computation (no PyTorch needed)."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.optim import rules

SHAPES = [(4, 3), (3,), (2, 5, 2)]
SETTINGS = {
    "adam": {},
    "adam-l2": {"weight_decay": 0.1},
    "adamw": {"weight_decay": 0.05, "decoupled": True},
    "amsgrad": {"amsgrad": True},
}


def scalar_adam(p: float, steps: int, lr=0.1, b1=0.9, b2=0.999, eps=1e-8) -> list:
    """Adam on f(p) = p^2 in plain Python floats, written from the paper: the independent oracle."""
    m = v = 0.0
    path = []
    for t in range(1, steps + 1):
        g = 2 * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p -= lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
        path.append(p)
    return path


@pytest.mark.parametrize("setting", SETTINGS)
def test_fused_adam_equals_the_textbook_rule_over_many_steps(setting):
    options = SETTINGS[setting]
    rng = np.random.default_rng(0)
    textbook = [rng.standard_normal(s) for s in SHAPES]
    fused = [p.copy() for p in textbook]
    sizes = [p.size for p in textbook]
    state = {k: [np.zeros(s) for s in SHAPES] for k in ("m", "v", "v_max")}
    flat = {k: np.zeros(sum(sizes)) for k in ("m", "v", "v_max", "scratch")}
    scratch_views = np.split(flat["scratch"], np.cumsum(sizes)[:-1])
    scratch_views = [view.reshape(s) for view, s in zip(scratch_views, SHAPES)]
    for step in range(1, 201):
        grads = [rng.standard_normal(s) + 0.1 * p for s, p in zip(SHAPES, textbook)]
        hyper = dict(step=step, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, **options)
        for k, (p, g) in enumerate(zip(textbook, grads)):
            rules.adam_update(p, g, state["m"][k], state["v"][k], state["v_max"][k], **hyper)
        g_flat = np.concatenate([g.ravel() for g in grads])
        rules.adam_update_fused(
            fused,
            g_flat,
            flat["m"],
            flat["v"],
            flat["v_max"],
            flat["scratch"],
            scratch_views,
            **hyper,
        )
    for a, b in zip(textbook, fused):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_adam_follows_the_independent_scalar_computation():
    expected = scalar_adam(1.0, 50)
    # pinned: the first steps of Adam (lr 0.1) on p^2 from p = 1
    assert expected[:3] == pytest.approx([0.9000000005, 0.8004122286917928, 0.7015862729460303])
    p = cr.tensor([1.0], dtype="float64", requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    path = []
    for _ in range(50):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        path.append(p.item())
    np.testing.assert_allclose(path, expected, rtol=1e-12)


def test_the_optimizer_takes_the_fused_path_and_matches_the_per_parameter_path():
    def train(force_per_parameter: bool):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()
        opt = optim.AdamW(model.parameters(), lr=0.01)
        if force_per_parameter:
            opt.fused_update = None
        rng = np.random.default_rng(1)
        for _ in range(30):
            opt.zero_grad(set_to_none=False)
            (model(cr.tensor(rng.standard_normal((8, 4)))) ** 2).mean().backward()
            opt.step()
        return [p.detach().numpy().copy() for p in model.parameters()]

    for fused, reference in zip(train(False), train(True)):
        np.testing.assert_allclose(fused, reference, rtol=1e-12)
