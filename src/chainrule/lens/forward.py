"""Forward propagation, explained: each layer's weighted sums, biases and activations for one
input, and which output neuron is the most activated (the prediction)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import autograd
from ..backend import xp
from ..nn import layers as L
from ..nn.module import Sequential
from ..tensor import Tensor, as_array

SHOW_ALL = 8  # layers with at most this many neurons are written out value by value


@dataclass
class LayerStep:
    """One layer of the forward pass for one example."""

    index: int
    layer: str
    inputs: object
    outputs: object
    weights: object = None
    bias: object = None

    @property
    def is_weighted_sum(self) -> bool:
        return self.weights is not None


@dataclass
class ForwardExplanation:
    """The steps of a forward pass; ``target_scale`` ``(mean, std)`` marks a regression, whose
    prediction is its one output turned back into the target's units, ``output * std + mean``."""

    steps: list = field(default_factory=list)
    output: object = None
    target_scale: tuple | None = None

    @property
    def prediction(self) -> int:
        """The most activated output neuron (a regression's only one)."""
        if self.target_scale is not None:
            return 0
        return int(xp.argmax(self.output)) if self.output.size > 1 else int(self.output.item() > 0)

    @property
    def value(self) -> float:
        """A regression's prediction in the target's units."""
        mean, std = self.target_scale
        return float(self.output.ravel()[0]) * std + mean

    @property
    def probabilities(self):
        """softmax of the output (sigmoid for a single output neuron)."""
        out = self.output.astype(xp.float64).ravel()
        if out.size == 1:
            p = 1 / (1 + xp.exp(-out[0]))
            return xp.array([1 - p, p])
        e = xp.exp(out - out.max())
        return e / e.sum()

    def __str__(self) -> str:
        lines = []
        for step in self.steps:
            lines.append(f"layer {step.index}: {step.layer}")
            if step.is_weighted_sum:
                lines += _describe_weighted_sum(step)
            else:
                lines.append(f"  activations  {_values(step.outputs)}")
        out = self.output.ravel()
        lines.append(f"output neurons {_values(out)}")
        if self.target_scale is not None:
            mean, std = self.target_scale
            lines.append(
                f"prediction: {self.value:.6g} = {out[0]:.4g} * {std:.4g} + {mean:.4g} (the output "
                "neuron's value, trained on standardised targets, back in the target's units)"
            )
            return "\n".join(lines)
        p = self.probabilities[self.prediction]
        if out.size == 1:
            lines.append(
                f"prediction: class {self.prediction} (the output {out[0]:.4g} is "
                f"{'above' if self.prediction else 'below'} 0; sigmoid gives {p:.3f})"
            )
        else:
            lines.append(
                f"prediction: class {self.prediction}, the most activated output neuron "
                f"(softmax probability {p:.3f})"
            )
        return "\n".join(lines)


def _values(a) -> str:
    a = xp.asarray(a).ravel()
    if a.size <= SHOW_ALL:
        return "[" + ", ".join(f"{v:.4g}" for v in a) + "]"
    top = xp.argsort(-a)[:3]
    return (
        f"{a.size} values, min {a.min():.4g}, mean {a.mean():.4g}, max {a.max():.4g}; "
        f"most active: " + ", ".join(f"#{i} = {a[i]:.4g}" for i in top)
    )


def _describe_weighted_sum(step: LayerStep) -> list[str]:
    x, w, b, z = (
        xp.asarray(v).ravel() if v is not None else None
        for v in (step.inputs, step.weights, step.bias, step.outputs)
    )
    w = xp.asarray(step.weights)
    lines = []
    if w.shape[0] <= SHOW_ALL and w.shape[1] <= SHOW_ALL:
        for j in range(w.shape[0]):
            terms = " + ".join(f"{w[j, i]:.3g}*{x[i]:.3g}" for i in range(w.shape[1]))
            bias = f" + {b[j]:.3g}" if b is not None else ""
            lines.append(f"  neuron {j}: z = {terms}{bias} = {z[j]:.4g}")
    else:
        lines.append(f"  weighted sums z = W x + b with W {w.shape}: {_values(z)}")
    return lines


@autograd.no_grad()
def explain_forward(model: Sequential, x, target_scale: tuple | None = None) -> ForwardExplanation:
    """Run one example through a Sequential model layer by layer, keeping what each layer did.

    Args:
        model: a :class:`~chainrule.nn.Sequential` network.
        x: one example (without the batch axis).
        target_scale: for a regression trained on standardised targets, their ``(mean, std)``.
    """
    if not isinstance(model, Sequential):
        raise TypeError("explain_forward walks a Sequential model layer by layer")
    was_training = model.training
    model.eval()
    try:
        h = Tensor._make(as_array(x)[None], False)
        explanation = ForwardExplanation(target_scale=target_scale)
        for i, layer in enumerate(model):
            out = layer(h)
            linear = isinstance(layer, L.Linear)
            explanation.steps.append(
                LayerStep(
                    i,
                    repr(layer),
                    h._data[0].copy(),
                    out._data[0].copy(),
                    layer.weight._data.copy() if linear else None,
                    layer.bias._data.copy() if linear and layer.bias is not None else None,
                )
            )
            h = out
        explanation.output = h._data[0].copy()
    finally:
        model.train(was_training)
    return explanation


@dataclass
class NeuronSum:
    """One neuron's weighted sum ``z = sum_i w_i x_i + b`` for one example, its largest terms
    first (by size): ``terms`` holds ``(input index, weight, input, product)``; ``rest`` is the
    sum of the terms not listed."""

    neuron: int
    terms: list
    rest: float
    bias: float
    total: float
    inputs: int

    def __str__(self) -> str:
        shown = " + ".join(f"{w:.3g}*{x:.3g}" for _, w, x, _ in self.terms)
        others = self.inputs - len(self.terms)
        rest = f" + ({others} more terms: {self.rest:.4g})" if others else ""
        return f"neuron {self.neuron}: z = {shown}{rest} + {self.bias:.3g} = {self.total:.4g}"


def neuron_sum(step: LayerStep, neuron: int, top: int = SHOW_ALL) -> NeuronSum:
    """The weighted sum of neuron ``neuron`` of a Linear step, its ``top`` largest terms named."""
    if not step.is_weighted_sum:
        raise ValueError(f"layer {step.index} ({step.layer}) has no weighted sums")
    x = xp.asarray(step.inputs, dtype=xp.float64).ravel()
    w = xp.asarray(step.weights, dtype=xp.float64)[neuron]
    products = w * x
    largest = xp.argsort(-xp.abs(products), kind="stable")[:top]
    bias = float(step.bias[neuron]) if step.bias is not None else 0.0
    terms = [(int(i), float(w[i]), float(x[i]), float(products[i])) for i in largest]
    rest = float(products.sum() - products[largest].sum())
    return NeuronSum(neuron, terms, rest, bias, float(products.sum()) + bias, x.size)
