"""Loss and cost, explained: the per-example losses, the cost as their sum and mean, and the
cost's gradient for one weight as the sum of the examples' gradients, all from the engine and
checked here against the formulas written out by hand."""

import numpy as np
import pytest
from PIL import Image

import chainrule as cr
from chainrule import nn
from chainrule.cli import main
from chainrule.lens import loss as lens_loss
from chainrule.tensor import as_array

pytest.importorskip("matplotlib", reason="the lens draws with matplotlib (the plot extra)")


def test_squared_errors_add_up_to_the_cost_and_their_gradients_to_its_gradient():
    model, x, y = lens_loss.small_batch("mse", n=5)
    e = lens_loss.explain_loss(model, "mse", x, y)
    xs, ys = x[:, 0].astype(np.float64), y.astype(np.float64)
    prediction = 1.5 * xs + 0.5
    losses = (prediction - ys) ** 2
    grads = 2 * (prediction - ys) * xs  # d loss_i / dw for the neuron y = w x + b
    assert e.weight == "0.weight[0, 0]" and e.weight_value == 1.5 and e.linear
    np.testing.assert_allclose([ex.loss for ex in e.examples], losses, rtol=1e-5)
    np.testing.assert_allclose([ex.grad for ex in e.examples], grads, rtol=1e-4, atol=1e-6)
    assert e.cost_sum == pytest.approx(losses.sum(), rel=1e-5)
    assert e.cost_mean == pytest.approx(losses.mean(), rel=1e-5)
    assert e.grad_sum == pytest.approx(sum(ex.grad for ex in e.examples), rel=1e-5)
    assert e.grad_mean == pytest.approx(e.grad_sum / 5, rel=1e-5)
    text = str(e)
    first = e.examples[0]
    assert f"= {first.loss:.4g}" in text and f"= {e.cost_sum:.4g}" in text
    assert "reduction='sum'" in text and "reduction='mean'" in text
    assert f"backward() of the 'sum' cost gives {e.grad_sum:.4g}" in text


def test_cross_entropy_is_minus_log_the_target_probability():
    model, x, y = lens_loss.small_batch("cross-entropy", n=4)
    assert sorted(set(y.tolist())) == [0, 1, 2]
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    for weight, index in (("0.weight", (1, 0)), ("0.bias", (2,))):
        e = lens_loss.explain_loss(model, "cross-entropy", x, y, weight, index)
        w, b = (np.asarray(model.state_dict()[k], dtype=np.float64) for k in ("0.weight", "0.bias"))
        logits = x.astype(np.float64) @ w.T + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        losses = -np.log(p[np.arange(4), y])
        out = index[0]
        factor = x[:, index[1]] if len(index) == 2 else 1.0
        grads = (p[:, out] - (y == out)) * factor
        np.testing.assert_allclose([ex.loss for ex in e.examples], losses, rtol=1e-5)
        np.testing.assert_allclose([ex.grad for ex in e.examples], grads, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose([ex.probabilities for ex in e.examples], p, rtol=1e-5)
        assert e.cost_mean == pytest.approx(losses.mean(), rel=1e-5)
        assert e.grad_sum == pytest.approx(grads.sum(), rel=1e-4, abs=1e-6)
        assert e.grad_mean == pytest.approx(grads.mean(), rel=1e-4, abs=1e-6)
        assert f"-log({p[0, y[0]]:.4g})" in str(e)
    for key, value in model.state_dict().items():  # explained on a copy
        np.testing.assert_array_equal(value, before[key])


def test_any_network_and_any_weight():
    cr.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    x, y = cr.data.plane(n=6, seed=2)
    e = lens_loss.explain_loss(model, "mse", x, y, "2.weight", (0, 3))
    assert not e.linear and "backward() on it alone" in str(e)
    model.zero_grad()
    nn.MSELoss(reduction="sum")(model(cr.tensor(x)), cr.tensor(y[:, None])).backward()
    assert e.grad_sum == pytest.approx(float(as_array(model[2].weight.grad)[0, 3]))
    assert e.grad_sum == pytest.approx(sum(ex.grad for ex in e.examples), rel=1e-5)
    with pytest.raises(KeyError, match="no parameter 'fc.weight'"):
        lens_loss.explain_loss(model, "mse", x, y, "fc.weight")
    with pytest.raises(ValueError, match="loss must be one of"):
        lens_loss.explain_loss(model, "hinge", x, y)


def test_explain_loss_command(tmp_path, capsys):
    out = tmp_path / "loss.png"
    assert main(["explain", "loss", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "one neuron" in text and "reduction='mean'" in text and f"picture: {out}" in text
    with Image.open(out) as image:
        assert image.size[0] > 300
    assert (
        main(["explain", "loss", "--loss", "cross-entropy", "--examples", "3", "--out", str(out)])
        == 0
    )
    assert "example 3:" in capsys.readouterr().out
    assert main(["explain", "loss", "--examples", "0"]) == 2
    assert "1 to 8 examples" in capsys.readouterr().err
