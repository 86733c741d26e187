"""The lens: the numbers behind every picture, headless pictures, and models left untouched."""

import importlib
import pkgutil

import numpy as np
import pytest
from PIL import Image

import chainrule as cr
from chainrule import lens, nn, optim
from chainrule.cli import main
from chainrule.optim import rules

pytest.importorskip("matplotlib", reason="the lens draws with matplotlib (the plot extra)")


def tiny(seed=0):
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2))


def snapshot(model):
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    state["grads"] = [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]
    return state


def assert_untouched(model, before):
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    for grad, old in zip((p.grad for p in model.parameters()), before["grads"]):
        assert (grad is None and old is None) or np.array_equal(grad, old)


def valid_image(path, frames=1):
    with Image.open(path) as image:
        assert image.size[0] > 100 and image.size[1] > 100
        assert getattr(image, "n_frames", 1) >= frames


def test_forward_explanation_is_the_weighted_sums_and_the_prediction(tmp_path):
    model = tiny()
    before = snapshot(model)
    x = np.array([1.0, 0.5], dtype=np.float32)
    explanation = lens.explain_forward(model, x)
    first = explanation.steps[0]
    np.testing.assert_allclose(
        first.outputs,
        model[0].weight.detach().numpy() @ x + model[0].bias.detach().numpy(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        explanation.steps[1].outputs, 1 / (1 + np.exp(-first.outputs)), rtol=1e-6
    )
    output = model(cr.tensor(x[None])).detach().numpy()[0]
    assert explanation.prediction == int(output.argmax())
    assert explanation.probabilities.sum() == pytest.approx(1.0)
    text = str(explanation)
    assert (
        f"z = {model[0].weight.detach().numpy()[0, 0]:.3g}*1" in text and "most activated" in text
    )
    valid_image(lens.plot_forward(explanation, tmp_path / "f.png"))
    assert_untouched(model, before)


def test_one_neurons_weighted_sum_largest_terms_first():
    from chainrule.lens.forward import neuron_sum

    layer = nn.Linear(5, 2)
    x = np.array([1.0, -2.0, 0.0, 3.0, 0.5], dtype=np.float32)
    step = lens.explain_forward(nn.Sequential(layer), x).steps[0]
    total = neuron_sum(step, 1, top=2)
    w = layer.weight.detach().numpy()[1].astype(np.float64)
    b = float(layer.bias.detach().numpy()[1])
    products = w * x
    assert [i for i, *_ in total.terms] == list(np.argsort(-np.abs(products))[:2])
    assert total.total == pytest.approx(products.sum() + b) == pytest.approx(step.outputs[1])
    assert total.rest == pytest.approx(products.sum() - sum(p for *_, p in total.terms))
    assert str(total).startswith("neuron 1: z = ") and "(3 more terms: " in str(total)
    with pytest.raises(ValueError, match="no weighted sums"):
        neuron_sum(lens.explain_forward(nn.Sequential(nn.ReLU()), x).steps[0], 0)


def test_chain_rule_trace_agrees_with_backward_and_finite_differences(tmp_path):
    model = tiny()
    before = snapshot(model)
    x, y = np.array([[1.0, 0.5]]), np.array([1])
    trace = lens.trace_model(model, nn.CrossEntropyLoss(), x, y)
    assert_untouched(model, before)  # traced on a copy

    reference = tiny()
    nn.CrossEntropyLoss()(reference(cr.tensor(x, dtype="float32")), y).backward()
    for name, p in reference.named_parameters():
        np.testing.assert_allclose(trace.grads[name], p.grad, rtol=1e-5, err_msg=name)
    report = cr.check_gradients(reference, nn.CrossEntropyLoss(), x, y, verbose=False)
    for row in report.rows:
        if row.name != "input":
            assert row.passed
            assert row.name in trace.grads  # every weight appears in the trace
    for step in trace.steps:  # the chain rule: dL/dinput = upstream x local, for elementwise ops
        for record in step.inputs:
            if record.local is not None:
                np.testing.assert_allclose(record.grad, step.upstream * record.local, rtol=1e-6)
    assert [s.op for s in trace.steps][0] == "Mean" and trace.steps[-1].op == "Linear"
    text = str(trace)
    assert "upstream" in text and "0.weight.grad +=" in text
    valid_image(lens.plot_trace(trace, tmp_path / "t.png"))


def test_trace_of_any_expression_accumulates_a_reused_weight():
    w = cr.tensor([0.5, -1.0], requires_grad=True, dtype="float64")
    loss = (w * w).sum() + (w * 3.0).sum()
    trace = lens.trace_backward(loss, {w: "w"})
    np.testing.assert_allclose(trace.grads["w"], w.grad)
    np.testing.assert_allclose(w.grad, 2 * w.detach().numpy() + 3)
    contributions = [r for s in trace.steps for r in s.inputs if r.name == "w"]
    assert len(contributions) == 3  # w*w uses w twice, w*3 once


def test_descent_follows_the_gradient_descent_rule():
    cost = lens.descent.COSTS["parabola"]
    path = lens.descent_path(cost, start=-1.0, lr=0.3, steps=10)
    w = np.array([-1.0])
    for k in range(10):
        slope = 2 * (w - 2.0)
        assert path["slope"][k] == pytest.approx(float(slope[0]))
        rules.gd_update(w, slope, lr=0.3)
        assert path["w"][k + 1] == pytest.approx(float(w[0]))
    assert abs(path["w"][-1] - 2) < 1e-3
    large = lens.descent_path(cost, start=-1.0, lr=1.02, steps=10)
    assert abs(large["w"][-1] - 2) > abs(large["w"][0] - 2)  # overshoots further every step
    small = lens.descent_path(cost, start=-1.0, lr=0.05, steps=10)
    assert 0 < abs(small["w"][-1] - 2) < 3 and small["cost"][-1] < small["cost"][0]


def test_the_race_uses_the_optimizers_own_update_rules():
    cost, start, _, lrs = lens.SURFACES["rosenbrock"]
    paths = lens.run_race("rosenbrock", steps=20)
    p, m, v = np.array(start), np.zeros(2), np.zeros(2)
    for k in range(20):
        x, y = p
        grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
        rules.adam_update(
            p, grad, m, v, None, step=k + 1, lr=lrs["adaptive"], beta1=0.9, beta2=0.999, eps=1e-8
        )
        np.testing.assert_allclose(paths["Adam"][k + 1], p, rtol=1e-10)
    assert set(paths) == {"GD", "SGD (noisy)", "momentum", "Nesterov", "RMSprop", "Adam"}
    assert cost(paths["momentum"][-1]) < cost(np.array(start))


def test_learning_curves_read_a_run_folder(tmp_path):
    assert main(["train", "--epochs", "3", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    history = lens.read_history(tmp_path / "run")
    assert history["epoch"] == [1.0, 2.0, 3.0] and len(history["val_loss"]) == 3
    valid_image(lens.plot_learning_curves(tmp_path / "run", tmp_path / "c.png"))


def test_decision_boundary_snapshots(tmp_path):
    result = lens.boundary_snapshots("moons", epochs=20, every=5)
    assert [s[0] for s in result["snapshots"]] == [0, 5, 10, 15, 20]
    assert result["snapshots"][-1][2] > 0.85
    path, _ = lens.plot_boundary(
        tmp_path / "b.png", "xor", epochs=10, every=5, gif=tmp_path / "b.gif"
    )
    valid_image(path)
    valid_image(tmp_path / "b.gif", frames=3)


def test_landscape_at_the_origin_is_the_models_loss_and_leaves_it_unchanged():
    x, y = cr.data.blobs(n=60, seed=0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    loss_fn = nn.CrossEntropyLoss()
    initial = lens.landscape.flat_weights(model)
    cr.train.fit(
        model, loss_fn, optim.Adam(model.parameters(), 0.05), (x, y), epochs=5, progress=False
    )
    trained = lens.landscape.flat_weights(model)
    before = snapshot(model)
    with cr.no_grad():
        loss_now = loss_fn(model(cr.tensor(x)), y).item()
    ts, line = lens.loss_along_line(model, loss_fn, x, y, initial, trained, points=25, beyond=0.25)
    assert np.isclose(ts, 1).any() and np.isclose(ts, 0).any()
    assert line[np.argmin(np.abs(ts - 1))] == pytest.approx(loss_now, rel=1e-5)
    surface = lens.loss_surface(
        model, loss_fn, x, y, span=0.5, resolution=5, trajectory=[initial, trained]
    )
    assert surface["loss"][2, 2] == pytest.approx(loss_now, rel=1e-5)
    np.testing.assert_allclose(surface["trajectory"][-1], [0, 0], atol=1e-6)
    assert_untouched(model, before)


def test_inside_views():
    flow = lens.gradient_flow(depth=4, epochs=1)
    sigmoid, relu = list(flow["sigmoid"].values()), list(flow["relu"].values())
    assert sigmoid[0] < sigmoid[-1] / 100  # vanishing towards the input
    assert relu[0] > sigmoid[0] * 10
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 5), nn.ReLU(), nn.Linear(5, 10))
    images = lens.first_layer_images(model, (8, 8))
    np.testing.assert_array_equal(images[3], model[1].weight.detach().numpy()[3].reshape(8, 8))
    acts = lens.activations_of(model, np.ones((4, 8, 8), dtype=np.float32))
    assert list(acts) == ["2 ReLU"] and acts["2 ReLU"].shape == (4, 5)
    recorder = lens.GradientNorms()
    x, y = cr.data.load_digits()
    cr.train.fit(
        model,
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.01),
        (x[:64], y[:64]),
        epochs=1,
        batch_size=64,
        callbacks=[recorder],
        progress=False,
    )
    assert recorder.norms["1.weight"][0] == pytest.approx(
        np.linalg.norm(model[1].weight.grad), rel=1e-5
    )


def test_lr_finder_restores_the_model_and_optimizer():
    x, y = cr.data.load_digits()
    x = cr.data.scale(x, 16.0).reshape(len(x), -1)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    before = snapshot(model)
    result = lens.lr_find(model, nn.CrossEntropyLoss(), opt, (x, y), steps=60)
    assert_untouched(model, before)
    assert opt.param_groups[0]["lr"] == 1e-3 and not opt.state
    assert 1e-5 < result["suggestion"] < 0.5
    twin = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    twin.load_state_dict(model.state_dict())
    fresh = optim.Adam(twin.parameters(), lr=1e-3)
    for m, o in ((model, opt), (twin, fresh)):  # the next step is as if lr_find never ran
        o.zero_grad()
        nn.CrossEntropyLoss()(m(cr.tensor(x[:32])), y[:32]).backward()
        o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert result["losses"][-1] > min(result["losses"])


def op_classes() -> set:
    """Every op class of chainrule (a Function with a forward of its own), its modules loaded."""
    from chainrule.function import Function

    for module in pkgutil.walk_packages(cr.ops.__path__, "chainrule.ops."):
        importlib.import_module(module.name)

    def below(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return {
        c
        for c in below(Function)
        if c.__module__.startswith("chainrule.") and c.forward is not Function.forward
    }


def test_every_op_states_the_formulas_the_trace_shows():
    """Each op's docstring opens with its forward formula and its local derivative, the fused
    ones (Linear, the losses fused with their softmax or sigmoid) as every other."""
    from chainrule.lens.trace import op_formulas
    from chainrule.ops import conv, linalg, losses

    found = op_classes()
    fused = {linalg.Linear, losses.SoftmaxCrossEntropy, losses.BinaryCrossEntropyWithLogits}
    assert len(found) >= 70 and fused | {conv.Conv2d} <= found
    missing = sorted(c.__name__ for c in found if not all(op_formulas(c)))
    assert not missing, f"state 'forward.   derivative.' first in these docstrings: {missing}"
    assert op_formulas(linalg.Linear) == ("z = x W^T + b", "dz/dx = W, dz/dW = x, dz/db = 1")


def test_a_function_of_your_own_shows_in_the_trace_with_its_own_formulas():
    from chainrule.lens.trace import trace_backward

    class Cube(cr.autograd.Function):
        """z = a^3.   dz/da = 3 a^2."""

        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a**3

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad * 3 * a**2

    x = cr.tensor([1.0, 2.0], requires_grad=True)
    steps = trace_backward(Cube.apply(x).sum(), {x: "x"}).steps
    assert [(s.op, s.formula) for s in steps][-1] == ("Cube", "z = a^3.   dz/da = 3 a^2.")
