"""Inside the image network for one picture: what every layer does to it, and one neuron's sum.

A drawing (or a test image the page picked) is prepared as ``chainrule predict`` prepares a
picture (:func:`~chainrule.runs.drawings.to_training_image`), then walked through the network
layer by layer by the lens (:func:`~chainrule.lens.forward.explain_forward`). The answer has:

* the input as the network sees it and, in words, what was done to get it;
* every layer's output (a layer that passes its input on unchanged, as ``Flatten`` does, is
  left out): neurons as cells, feature maps of a convolution as small images, each as bytes
  around 127.5 scaled by the layer's largest value (:func:`.frames.signed_bytes`);
* the output neurons' softmax probabilities and the most activated one, named;
* on request, one step of backpropagation for the picture and the class it is said to be: the
  gradient of the cost (the cross-entropy) with respect to every layer's output, the same layers
  drawn the same way; the weights are left as they are;
* on request, one neuron: a dense neuron's weighted sum
  (:func:`~chainrule.lens.forward.neuron_sum`: the largest terms, the rest, the bias, the total,
  then the activation) with its weights as a picture; or one position of a feature map: the
  kernel over the input window there, the products, the bias and the sum.
"""

from __future__ import annotations

from .. import nn
from ..backend import xp
from ..lens.forward import explain_forward, neuron_sum
from ..runs.config import RunError
from ..runs.drawings import to_training_image
from ..tensor import Tensor, as_array
from .frames import encode, signed_bytes
from .images import decode_picture
from .points import PlaygroundError

TERMS = 8  # terms of a weighted sum written out


def inside(run, picture, neuron=None, backprop=None) -> dict:
    """The inside view of ``run``'s network for ``picture`` (base64 image file text);
    ``neuron``: ``{"layer": i, "index": [...]}`` to explain one neuron of layer ``i``;
    ``backprop``: the class the picture is, for the gradient reaching each layer."""
    images = run.images
    grey = decode_picture("the drawing", picture)
    try:
        seen = to_training_image(grey, images.shape[1:], images.prepared_as)
    except RunError as exc:
        raise PlaygroundError(f"the drawing: {exc}") from None
    explanation = explain_forward(run.model, seen.pixels[None].astype(xp.float32))
    steps = explanation.steps
    layers = []
    for step in steps:
        if _passes_through(step):
            continue
        encoded, scale = signed_bytes(step.outputs)
        layers.append(
            {
                "index": step.index,
                "name": step.layer,
                "shape": list(step.outputs.shape),
                "map": encoded,
                "scale": float(f"{scale:.4g}"),
            }
        )
    probabilities = explanation.probabilities
    answer = {
        "input": encode(xp.rint(255 * xp.clip(seen.pixels, 0, 1))),
        "shape": list(images.shape),
        "prepared": seen.described() or "taken as it is",
        "layers": layers,
        "outputs": [float(f"{v:.4g}") for v in explanation.output.ravel()],
        "probabilities": [float(f"{p:.4f}") for p in probabilities],
        "prediction": explanation.prediction,
        "answer": images.classes[explanation.prediction],
    }
    if neuron is not None:
        answer["neuron"] = explain_neuron(run.model, steps, neuron)
    if backprop is not None:
        label = _label(backprop, images.classes)
        loss, grads = layer_gradients(run, seen.pixels[None].astype(xp.float32), label)
        shown = {layer["index"] for layer in layers}
        answer["backprop"] = {
            "label": label,
            "loss": loss,
            "layers": {
                i: dict(zip(("map", "scale"), signed_bytes(g)))
                for i, g in enumerate(grads)
                if i in shown
            },
        }
    return answer


def _label(value, classes: list) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(classes):
        raise PlaygroundError(f"backprop: the class must be 0 to {len(classes) - 1}")
    return value


def layer_gradients(run, x, label: int) -> tuple[float, list]:
    """One backward pass for one picture ``x`` (C, H, W) said to be class ``label``: the
    cross-entropy J and dJ/d(each layer's output), kept by ``retain_grad``. The weights'
    gradients it leaves are cleared (``zero_grad``), as the next training step would."""
    model = run.model
    was_training = model.training
    model.eval()
    try:
        h, outputs = Tensor(x[None], requires_grad=True), []
        for layer in model:
            h = layer(h)
            h.retain_grad()
            outputs.append(h)
        loss = nn.CrossEntropyLoss()(h, Tensor._make(xp.asarray([label], dtype=xp.int64), False))
        loss.backward()
        return float(loss.item()), [as_array(o.grad)[0] for o in outputs]
    finally:
        run.optimizer.zero_grad()
        model.train(was_training)


def _passes_through(step) -> bool:
    """A layer whose output holds its input's values (Flatten, Dropout in evaluation)."""
    out, x = xp.asarray(step.outputs), xp.asarray(step.inputs)
    return out.size == x.size and bool(xp.array_equal(out.ravel(), x.ravel()))


def explain_neuron(model, steps: list, neuron) -> dict:
    """One neuron of ``steps`` (the lens's layer steps): ``{"layer": i, "index": [j]}`` for a
    dense neuron, ``[channel, row, column]`` for a position of a feature map. A click on an
    activation layer explains the sum it was applied to."""
    layer, index = _where(neuron, steps)
    step = steps[layer]
    if not step.is_weighted_sum and not _has_kernel(model[layer]) and layer > 0:
        if steps[layer - 1].outputs.shape == step.outputs.shape:
            layer, step = layer - 1, steps[layer - 1]  # the activation of the sum before it
    after = steps[layer + 1] if layer + 1 < len(steps) else None
    activation = None
    if after is not None and after.outputs.shape == step.outputs.shape:
        activation = {"name": after.layer, "value": float(after.outputs[tuple(index)])}
    if step.is_weighted_sum and len(index) == 1:
        total = neuron_sum(step, index[0], TERMS)
        weights = xp.asarray(step.weights)[index[0]]
        encoded, scale = signed_bytes(weights)
        return {
            "kind": "sum",
            "layer": layer,
            "name": step.layer,
            "index": index,
            "text": str(total),
            "terms": [
                {"input": i, "weight": w, "value": x, "product": p} for i, w, x, p in total.terms
            ],
            "rest": total.rest,
            "others": total.inputs - len(total.terms),
            "bias": total.bias,
            "total": total.total,
            "activation": activation,
            "weights": {"size": int(weights.size), "map": encoded, "scale": scale},
        }
    if _has_kernel(model[layer]) and len(index) == 3:
        return {
            **_kernel_at(model[layer], step, index),
            "layer": layer,
            "name": step.layer,
            "index": index,
            "activation": activation,
        }
    raise PlaygroundError(f"layer {layer} ({step.layer}) has no weighted sums to show")


def _where(neuron, steps: list) -> tuple[int, list]:
    """The checked layer and index of a neuron the page asked about."""
    if not isinstance(neuron, dict):
        raise PlaygroundError('neuron: send {"layer": i, "index": [...]}')
    layer, index = neuron.get("layer"), neuron.get("index")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(steps):
        raise PlaygroundError(f"neuron: layer must be 0 to {len(steps) - 1}, got {layer!r:.40}")
    shape = steps[layer].outputs.shape
    ok = isinstance(index, list) and len(index) == len(shape)
    ok = ok and all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i, n in zip(index, shape)
    )
    if not ok:
        raise PlaygroundError(f"neuron: layer {layer}'s index must be within {list(shape)}")
    return layer, index


def _has_kernel(layer) -> bool:
    return "kernel_size" in layer.config() and getattr(layer, "weight", None) is not None


def _kernel_at(layer, step, index: list) -> dict:
    """Feature map ``c`` at (row, column): its kernel over the input window there (all input
    channels), the products and their sum plus the bias: the convolution at one position."""
    c, row, col = index
    config = layer.config()
    (sy, sx), (py, px) = config["stride"], config["padding"]
    (ky, kx), (dy, dx) = config["kernel_size"], config["dilation"]
    x = xp.pad(xp.asarray(step.inputs, dtype=xp.float64), ((0, 0), (py, py), (px, px)))
    window = x[
        :,
        row * sy : row * sy + dy * (ky - 1) + 1 : dy,
        col * sx : col * sx + dx * (kx - 1) + 1 : dx,
    ]
    kernel = xp.asarray(layer.weight._data, dtype=xp.float64)[c]
    if config["groups"] != 1:
        raise PlaygroundError("a grouped convolution's windows are not drawn")
    products = kernel * window
    bias = float(layer.bias._data[c]) if layer.bias is not None else 0.0
    total = float(products.sum()) + bias
    return {
        "kind": "kernel",
        "kernel": xp.round(kernel, 4).tolist(),
        "window": xp.round(window, 4).tolist(),
        "products": xp.round(products, 4).tolist(),
        "bias": bias,
        "total": total,
        "text": (
            f"map {c} at row {row}, column {col}: z = sum of {products.size} products "
            f"(kernel x input window) {products.sum():.4g} + bias {bias:.3g} = {total:.4g}"
        ),
        "position": [row * sy - py, col * sx - px],
    }
