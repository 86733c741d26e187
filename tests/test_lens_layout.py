"""The forward and chain-rule pictures as layouts: no two boxes intersect, every edge joins two
boxes and runs through none, the numbers in the boxes are the engine's, and the drawn text fits
inside its box."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.lens import commands, forward, layout, trace
from chainrule.lens.figures import NEGATIVE, POSITIVE
from chainrule.lens.forward_figure import drawing_columns, forward_layout
from chainrule.lens.layout import Box, Edge, Layout, layered, text_size
from chainrule.lens.trace_figure import trace_layout

pytest.importorskip("matplotlib", reason="the lens draws with matplotlib (the plot extra)")


def flat(b):
    """A box's text on one line (wrapped lines joined)."""
    return " ".join(line.strip() for line in b.lines)


def box(name, width=40.0, height=20.0):
    return Box(name, width, height, [name])


# -- the layout engine ------------------------------------------------------------------------------


def test_the_checks_catch_overlaps_loose_edges_and_edges_through_boxes():
    a, b = Box("a", 10, 10, x=0, y=0), Box("b", 10, 10, x=5, y=5)
    assert "boxes 'a' and 'b' overlap" in Layout({"a": a, "b": b}).problems()
    b.x = 10  # touching sides is not overlapping
    assert Layout({"a": a, "b": b}).problems() == []
    loose = Layout({"a": a}, [Edge("a", "z", [(5, 0), (30, 0)])])
    assert "edge 'a' -> 'z' does not join two boxes" in loose.problems()
    c = Box("c", 10, 10, x=40, y=0)
    wrong_end = Layout({"a": a, "c": c}, [Edge("a", "c", [(5, 0), (30, 0)])])
    assert "edge 'a' -> 'c' does not start and end at them" in wrong_end.problems()
    middle = Box("m", 10, 10, x=20, y=0)
    through = Layout({"a": a, "c": c, "m": middle}, [Edge("a", "c", [(5, 0), (35, 0)])])
    assert "edge 'a' -> 'c' runs through 'm'" in through.problems()
    middle.y = 5  # now the edge runs along its bottom side: touching, not through
    assert through.problems() == []


def test_layered_places_columns_apart_and_routes_long_edges_over_them():
    rng = np.random.default_rng(0)
    for trial in range(20):
        sizes = rng.integers(1, 6, size=rng.integers(2, 6))
        columns = [
            [box(f"{c}.{k}", *rng.uniform(15, 90, 2)) for k in range(n)]
            for c, n in enumerate(sizes)
        ]
        edges = []
        for c in range(len(columns) - 1):
            for target in columns[c + 1]:
                source = columns[int(rng.integers(0, c + 1))][0]  # sometimes from far back
                edges.append((source.name, target.name))
        result = layered(columns, edges)
        assert result.problems() == [], trial
        assert len(result.edges) == len(edges)
        for c in range(len(columns) - 1):  # columns left to right, apart
            assert max(b.right for b in columns[c]) < min(b.left for b in columns[c + 1])
        for column in columns:  # each column keeps its order, top to bottom
            ys = [b.y for b in column]
            assert ys == sorted(ys, reverse=True)


def test_layered_refuses_what_it_cannot_draw():
    a, b = box("a"), box("b")
    with pytest.raises(ValueError, match="must run to a later column"):
        layered([[a], [b]], [("b", "a")])
    with pytest.raises(ValueError, match="no box named 'c'"):
        layered([[box("a")], [box("b")]], [("a", "c")])
    with pytest.raises(ValueError, match="two boxes are named 'a'"):
        layered([[box("a")], [box("a")]], [])


def test_text_size_grows_with_the_text():
    small = text_size(["ab"], 8)
    assert text_size(["abcd"], 8)[0] > small[0] and text_size(["ab", "cd"], 8)[1] > small[1]
    assert small[0] == pytest.approx(2 * layout.CHAR_WIDTH * 8 + 2 * layout.PADDING)


# -- the forward pass ---------------------------------------------------------------------------


def forward_explanation(model, x):
    return forward.explain_forward(model, x)


def test_forward_layout_of_the_tiny_network():
    model, x, _ = commands.tiny_network()
    e = forward_explanation(model, x)
    lay = forward_layout(e)
    assert lay.problems() == []
    neurons = {n: b for n, b in lay.boxes.items() if n.startswith("n")}
    assert set(neurons) == {"n0:0", "n0:1", "n1:0", "n1:1", "n1:2", "n2:0", "n2:1"}
    z = model[0].weight.detach().numpy() @ x + model[0].bias.detach().numpy()
    a = 1 / (1 + np.exp(-z))
    for j in range(3):  # each hidden neuron shows its weighted sum and activation
        assert neurons[f"n1:{j}"].lines == [f"z = {z[j]:.3g}", f"a = {a[j]:.3g}"]
    assert neurons["n0:0"].lines == ["x1 = 1"] and neurons["n0:1"].lines == ["x2 = 0.5"]
    edges = {(e.source, e.target): e for e in lay.edges}
    assert len(edges) == 2 * 3 + 3 * 2 + 1
    w = model[2].weight.detach().numpy()
    for j in range(2):
        for i in range(3):
            style = edges[(f"n1:{i}", f"n2:{j}")].style
            assert style["color"] == (POSITIVE if w[j, i] > 0 else NEGATIVE)  # the playground's
            assert style["width"] == pytest.approx(0.4 + 3 * abs(w[j, i]) / np.abs(w).max())
    winner = f"n2:{e.prediction}"
    assert ("n2:" + str(e.prediction), "prediction") in edges
    assert lay.boxes[winner].style["edge"] == "green"
    assert f"prediction: class {e.prediction}" in lay.boxes["prediction"].lines[0]
    for name, b in neurons.items():  # headers sit above every neuron
        assert all(b.top < lay.boxes[f"header{k}"].bottom for k in range(3)), name


def test_a_wide_network_shows_the_top_of_each_layer_beside_its_image():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 10))
    images, _ = cr.data.load_digits()
    image = images[3] / 16
    e = forward_explanation(model, image)
    columns = drawing_columns(e, max_neurons=5)
    hidden = columns[1].a
    assert columns[1].shown == sorted(np.argsort(-hidden, kind="stable")[:5].tolist())
    assert columns[2].shown == list(range(10))  # ten outputs: drawn whole
    lay = forward_layout(e, max_neurons=5, image=image)
    assert lay.problems() == []
    assert lay.boxes["n0:image"].style["image"] is image
    assert lay.boxes["n1:more"].lines[0] == "... 35 more"
    for j in columns[1].shown:
        assert lay.boxes[f"n1:{j}"].lines[0] == f"#{j}"
        assert ("n0:image", f"n1:{j}") in {(e.source, e.target) for e in lay.edges}
    assert lay.boxes["n2:7"].lines[0] == "class 7"


def test_a_convolutional_network_lays_out_too():
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 4)
    )
    x = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    lay = forward_layout(forward_explanation(model, x), image=x[0])
    assert lay.problems() == []
    assert any(b.lines and b.lines[0].startswith("[") for b in lay.boxes.values())


# -- the chain-rule graph -------------------------------------------------------------------------


def test_trace_layout_puts_leaves_left_of_their_operation_and_the_loss_right():
    model, x, label = commands.tiny_network()
    t = trace.trace_model(model, nn.CrossEntropyLoss(), x[None], np.array([label]))
    lay = trace_layout(t)
    assert lay.problems() == []
    ops = {s.output for s in t.steps}
    loss = t.steps[0].output
    assert lay.boxes[loss].right == max(b.right for b in lay.boxes.values())
    for step in t.steps:
        node = lay.boxes[step.output]
        assert node.lines[0].startswith(f"{step.output} = {step.op}(")
        assert any(line.startswith(f"grad dL/d{step.output}") for line in node.lines) or (
            step.output == loss
        )
        for record in step.inputs:
            if record.name in ops:
                continue
            name = record.name if record.name != "const" else None
            if name:
                leaf = lay.boxes[name]
                assert leaf.right < node.left  # left of the operation that uses it
    for name, grad in t.grads.items():  # each weight's box shows its .grad from the engine
        text = flat(lay.boxes[name])
        expected = ", ".join(f"{v:.3g}" for v in np.ravel(grad))
        assert expected in text, name
    sigmoid = next(s for s in t.steps if s.op == "Sigmoid")
    local = ", ".join(f"{v:.3g}" for v in sigmoid.inputs[0].local.ravel())
    assert f"local dv2/dv1 = [{local}]" in flat(lay.boxes[sigmoid.output])


def test_trace_layout_of_a_deeper_network_and_a_reused_weight():
    cr.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    x = np.random.default_rng(1).random((2, 3)).astype(np.float32)
    t = trace.trace_model(model, nn.CrossEntropyLoss(), x, np.array([0, 1]))
    assert trace_layout(t).problems() == []

    w = cr.tensor([0.5, -1.0], requires_grad=True, dtype="float64")
    v = cr.tensor([2.0, 1.0], requires_grad=True, dtype="float64")
    loss = ((w * v).exp() * w).sum() + (v * 3.0).sum()  # w feeds two operations far apart
    lay = trace_layout(trace.trace_backward(loss, {w: "w", v: "v"}))
    assert lay.problems() == []
    long_edges = [e for e in lay.edges if len(e.points) > 4]
    assert long_edges  # routed over the columns in between


# -- drawing: the text stays inside its box ------------------------------------------------------


def text_outside_boxes(lay, title):
    from chainrule.lens.diagram import draw

    fig = draw(lay, title)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    outside = []
    for text in ax.texts:
        name = text.get_gid()
        if name is None:
            continue
        b = lay.boxes[name]
        (x0, y0), (x1, y1) = ax.transData.transform([(b.left, b.bottom), (b.right, b.top)])
        extent = text.get_window_extent(renderer)
        if (
            extent.x0 < x0 - 0.5
            or extent.x1 > x1 + 0.5
            or extent.y0 < y0 - 0.5
            or extent.y1 > y1 + 0.5
        ):
            outside.append(name)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return outside


def test_drawn_text_fits_its_box():
    model, x, label = commands.tiny_network()
    assert text_outside_boxes(forward_layout(forward_explanation(model, x)), "t") == []
    t = trace.trace_model(model, nn.CrossEntropyLoss(), x[None], np.array([label]))
    assert text_outside_boxes(trace_layout(t), "t") == []


def test_the_backward_graph_shows_fused_local_derivatives_and_arrows_going_back():
    """The Linear and softmax-cross-entropy nodes show their local derivatives with numbers, and
    every edge that carries a gradient has a twin running back, from the node to its input."""
    model, x, label = commands.tiny_network()
    t = trace.trace_model(model, nn.CrossEntropyLoss(), x[None], np.array([label]))
    lay = trace_layout(t)
    assert lay.problems() == []
    first = next(s for s in reversed(t.steps) if s.op == "Linear")
    weight = ", ".join(f"{v:.3g}" for v in np.ravel(first.inputs[1].value))
    assert f"local dv1/dx = 0.weight = [{weight}]" in flat(lay.boxes["v1"])
    loss = next(s for s in t.steps if s.op == "SoftmaxCrossEntropy")
    probabilities = np.exp(loss.inputs[0].value) / np.exp(loss.inputs[0].value).sum()
    local = probabilities - np.eye(2)[label]  # softmax(x) - q
    assert "[" + ", ".join(f"{v:.3g}" for v in local.ravel()) + "]" in flat(lay.boxes["v4"])
    forward_edges = {(e.source, e.target) for e in lay.edges if e.style["color"] != "firebrick"}
    back = {(e.source, e.target) for e in lay.edges if e.style["color"] == "firebrick"}
    assert back == {(b, a) for a, b in forward_edges if a in t.grads or a.startswith("v")}
