"""Loss and cost, explained: for a small batch, each example's prediction, target and loss (the
formula with its numbers), the cost as the sum or the mean of those losses (the ``reduction``
argument of every loss), and the gradient of the cost for one weight as the sum of the
examples' own gradients. Every number comes from the engine (forward and ``backward()``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .. import autograd, nn
from ..backend import manual_seed, xp
from ..nn import functional as F
from ..tensor import Tensor, as_array

LOSSES = ("mse", "cross-entropy")


@dataclass
class ExampleLoss:
    """One example of the batch."""

    inputs: object
    prediction: object  # the model's output row (one number, or one logit per class)
    target: float | int
    loss: float  # loss_fn(..., reduction='none') for this example
    grad: float  # d loss_i / d weight, by backward() on this example alone
    probabilities: object = None  # cross-entropy: softmax of the logits


@dataclass
class LossExplanation:
    loss: str
    weight_name: str
    weight_index: tuple
    weight_value: float
    examples: list = field(default_factory=list)
    cost_sum: float = 0.0  # loss_fn(..., reduction='sum')
    cost_mean: float = 0.0  # loss_fn(..., reduction='mean')
    grad_sum: float = 0.0  # d cost_sum / d weight, by backward()
    grad_mean: float = 0.0
    linear: bool = False  # the model is one Linear layer: the gradient formula can be written

    @property
    def weight(self) -> str:
        return f"{self.weight_name}[{', '.join(map(str, self.weight_index))}]"

    def __str__(self) -> str:
        n = len(self.examples)
        if self.loss == "mse":
            lines = ["loss of each example (squared error): loss_i = (prediction_i - target_i)^2"]
        else:
            lines = [
                "loss of each example (cross-entropy): loss_i = -log p_i(target), "
                "p_i = softmax(logits_i)"
            ]
        for k, e in enumerate(self.examples, start=1):
            lines.append(f"  example {k}: x = {_vector(e.inputs)}")
            lines.append("    " + _loss_formula(self.loss, e))
        losses = [e.loss for e in self.examples]
        lines += [
            "cost of the batch, from the per-example losses (the reduction argument):",
            f"  reduction='sum':  {_sum_of(losses)} = {self.cost_sum:.4g}",
            f"  reduction='mean': {self.cost_sum:.5g} / {n} = {self.cost_mean:.4g}"
            "   (the default: training minimises this)",
            f"gradient of the cost for one weight, {self.weight} = {self.weight_value:.4g}:",
            f"  each example's own d loss_i / d {self.weight}"
            + (f" = {_gradient_formula(self)}" if self.linear else " (backward() on it alone)"),
        ]
        for k, e in enumerate(self.examples, start=1):
            lines.append(f"    example {k}: {_gradient_numbers(self, e)}{e.grad:.4g}")
        grads = [e.grad for e in self.examples]
        lines += [
            f"  their sum: {_sum_of(grads)} = {sum(grads):.4g};"
            f" backward() of the 'sum' cost gives {self.grad_sum:.4g}",
            f"  their mean: {sum(grads):.5g} / {n} = {sum(grads) / n:.4g};"
            f" backward() of the 'mean' cost gives {self.grad_mean:.4g}",
        ]
        return "\n".join(lines)


def _vector(a) -> str:
    a = xp.asarray(a).ravel()
    return f"{a[0]:.3g}" if a.size == 1 else "(" + ", ".join(f"{v:.3g}" for v in a) + ")"


def _num(v: float, digits: int = 4) -> str:
    """A number as a term of a formula: negative ones in brackets, ``2 (a - (-b))``."""
    text = f"{v:.{digits}g}"
    return f"({text})" if v < 0 else text


def _sum_of(values) -> str:
    return " + ".join(f"{v:.4g}" for v in values).replace("+ -", "- ")


def _loss_formula(loss: str, e: ExampleLoss) -> str:
    if loss == "mse":
        p = float(xp.asarray(e.prediction).ravel()[0])
        return (
            f"prediction {p:.4g}, target {e.target:.4g}: "
            f"loss = ({p:.4g} - {_num(e.target)})^2 = {e.loss:.4g}"
        )
    p = float(e.probabilities[e.target])
    return (
        f"logits {_vector(e.prediction)}, softmax {_vector(e.probabilities)}, target class "
        f"{e.target}: loss = -log({p:.4g}) = {e.loss:.4g}"
    )


def _gradient_formula(explanation: LossExplanation) -> str:
    """d loss_i / d W[out, j] of one Linear layer (x_j becomes 1 for the bias b[out])."""
    out = explanation.weight_index[0]
    factor = f" x_i[{explanation.weight_index[1]}]" if len(explanation.weight_index) == 2 else ""
    if explanation.loss == "mse":
        return f"2 (prediction_i - target_i){factor}"
    return f"(p_i[{out}] - [target_i == {out}]){factor}"


def _gradient_numbers(explanation: LossExplanation, e: ExampleLoss) -> str:
    if not explanation.linear:
        return ""
    out = explanation.weight_index[0]
    factor = ""
    if len(explanation.weight_index) == 2:
        factor = " " + _num(float(xp.asarray(e.inputs).ravel()[explanation.weight_index[1]]), 3)
    if explanation.loss == "mse":
        p = float(xp.asarray(e.prediction).ravel()[0])
        return f"2 ({p:.4g} - {_num(e.target)}){factor} = "
    return f"({float(e.probabilities[out]):.4g} - {int(e.target == out)}){factor} = "


def loss_function(loss: str, reduction: str):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if loss == "mse":
        return nn.MSELoss(reduction=reduction)
    return nn.CrossEntropyLoss(reduction=reduction)


def small_batch(loss: str, n: int = 4, seed: int = 0):
    """A model and a small batch to explain: for ``mse`` one neuron ``y = 1.5 x + 0.5`` (not yet
    fitted) and ``n`` points of ``data.line``; for ``cross-entropy`` a softmax classifier
    ``Linear(2, 3)`` and ``n`` points of ``data.blobs``."""
    from .. import data

    manual_seed(seed)
    if loss == "mse":
        x, y = data.line(n=10 * n, a=2.0, b=1.0, noise=0.5, seed=seed, x_range=(-1.0, 3.0))
        spread = xp.argsort(x[:, 0])[xp.linspace(0, 10 * n - 1, n).astype(int)]
        x, y = x[spread], y[spread]  # points from left to right, so their labels stay apart
        model = nn.Sequential(nn.Linear(1, 1))
        model[0].weight._data[...] = 1.5
        model[0].bias._data[...] = 0.5
        return model, x, y
    x, y = data.blobs(n=30 * n, classes=3, seed=seed)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    picked = [xp.flatnonzero(y == k % 3)[k // 3] for k in range(n)]  # classes 0, 1, 2, 0, ...
    return nn.Sequential(nn.Linear(2, 3)), x[picked], y[picked]


def explain_loss(model, loss: str, x, y, weight: str | None = None, index=None):
    """Explain the losses of the batch ``(x, y)`` and the cost they add up to.

    Args:
        model: the network (a copy is used; the model is left untouched).
        loss: ``"mse"`` (one output, real targets) or ``"cross-entropy"`` (logits, class labels).
        x, y: a small batch (examples along the first axis).
        weight: the parameter whose gradient is broken down (default: the first one).
        index: which entry of it (default: the first).
    """
    twin = copy.deepcopy(model)
    params = dict(twin.named_parameters())
    weight = weight or next(iter(params))
    if weight not in params:
        raise KeyError(f"no parameter {weight!r}; the model has {', '.join(params)}")
    param = params[weight]
    index = tuple(index) if index is not None else (0,) * len(param.shape)
    x = Tensor._make(xp.asarray(as_array(x)), False)
    target = xp.asarray(as_array(y))
    if loss == "mse":
        target = target.reshape(len(target), -1).astype(x.dtype)

    def backward_of(inputs, targets, reduction: str) -> tuple[float, float]:
        twin.zero_grad()
        cost = loss_function(loss, reduction)(twin(inputs), targets)
        cost.backward()
        return cost.item(), float(as_array(param.grad)[index])

    with autograd.no_grad():
        outputs = as_array(twin(x))
        per_example = as_array(loss_function(loss, "none")(twin(x), target)).reshape(len(target))
        probabilities = as_array(F.softmax(twin(x), axis=-1)) if loss != "mse" else None
    explanation = LossExplanation(
        loss,
        weight,
        index,
        float(as_array(param)[index]),
        linear=_is_one_layer(twin, weight),
    )
    for i in range(len(target)):
        _, grad = backward_of(x[i : i + 1], target[i : i + 1], "sum")
        explanation.examples.append(
            ExampleLoss(
                as_array(x)[i],
                outputs[i],
                float(target[i, 0]) if loss == "mse" else int(target[i]),
                float(per_example[i]),
                grad,
                None if probabilities is None else probabilities[i],
            )
        )
    explanation.cost_sum, explanation.grad_sum = backward_of(x, target, "sum")
    explanation.cost_mean, explanation.grad_mean = backward_of(x, target, "mean")
    return explanation


def _is_one_layer(model, weight: str) -> bool:
    """True for a single Linear layer (alone or in a Sequential): its gradients have a formula."""
    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    return len(layers) == 1 and isinstance(layers[0], nn.Linear)


def plot_loss(explanation: LossExplanation, path, model=None):
    """Three panels: each example's loss, the losses stacked into the cost (sum and mean), and
    the examples' gradients adding up to the cost's gradient for one weight."""
    from .figures import pyplot, save_png

    plt = pyplot()
    fig, (ax_examples, ax_cost, ax_grad) = plt.subplots(
        1, 3, figsize=(13, 4), dpi=70, gridspec_kw={"width_ratios": [1.2, 0.9, 0.9]}
    )
    if explanation.loss == "mse":
        _draw_residuals(ax_examples, explanation)
    else:
        _draw_probabilities(ax_examples, explanation)
    colours = plt.get_cmap("tab10")
    n = len(explanation.examples)
    _draw_stacked(
        ax_cost,
        [e.loss for e in explanation.examples],
        explanation.cost_mean,
        colours,
        "loss",
        f"cost of {n} examples:\nsum {explanation.cost_sum:.3g}, mean {explanation.cost_mean:.3g}",
    )
    _draw_stacked(
        ax_grad,
        [e.grad for e in explanation.examples],
        explanation.grad_mean,
        colours,
        f"d loss / d {explanation.weight}",
        f"gradient for {explanation.weight}:\nsum {explanation.grad_sum:.3g}, "
        f"mean {explanation.grad_mean:.3g}",
    )
    fig.suptitle("each example's loss adds up to the cost; their gradients add up to its gradient")
    fig.tight_layout()
    return save_png(fig, path)


def _draw_residuals(ax, explanation: LossExplanation) -> None:
    xs = [float(xp.asarray(e.inputs).ravel()[0]) for e in explanation.examples]
    preds = [float(xp.asarray(e.prediction).ravel()[0]) for e in explanation.examples]
    targets = [e.target for e in explanation.examples]
    order = xp.argsort(xs)
    ax.plot(xp.array(xs)[order], xp.array(preds)[order], color="tab:red", label="prediction")
    ax.scatter(xs, targets, color="tab:blue", zorder=3, label="target")
    for k, (x, p, t, e) in enumerate(zip(xs, preds, targets, explanation.examples), start=1):
        ax.plot([x, x], [p, t], color="0.4", ls=":")
        ax.annotate(
            f"{k}: ({p:.2g} - {_num(t, 2)})^2\n= {e.loss:.3g}",
            (x, (p + t) / 2),
            xytext=(6, 0),
            textcoords="offset points",
            fontsize=8,
            va="center",
            bbox=dict(fc="white", ec="none", alpha=0.8),
        )
    ax.set_xlabel("x")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("each example's loss: its squared error", fontsize=10)


def _draw_probabilities(ax, explanation: LossExplanation) -> None:
    classes = len(explanation.examples[0].probabilities)
    width = 0.8 / classes
    for k, e in enumerate(explanation.examples):
        for c in range(classes):
            is_target = c == e.target
            ax.bar(
                k + (c - (classes - 1) / 2) * width,
                e.probabilities[c],
                width,
                color=f"C{c}",
                edgecolor="k" if is_target else "none",
                linewidth=2,
                label=f"class {c}" if k == 0 else None,
            )
        ax.text(
            k,
            1.02,
            f"-log {e.probabilities[e.target]:.2f}\n= {e.loss:.3g}",
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(range(len(explanation.examples)))
    ax.set_xticklabels(
        [f"example {k + 1}\ntarget {e.target}" for k, e in enumerate(explanation.examples)]
    )
    ax.set_ylim(0, 1.45)  # room for the losses above the bars, and the legend above them
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("softmax probability")
    ax.legend(fontsize=8, loc="upper center", ncol=classes)
    ax.set_title("each example's loss: -log p(target class), outlined", fontsize=10)


def _draw_stacked(ax, values, mean, colours, label, title) -> None:
    """The values stacked in one bar (their sum), one bar for the mean, signs kept apart."""
    up = down = 0.0
    span = max(sum(v for v in values if v > 0) - sum(v for v in values if v < 0), abs(mean), 1e-12)
    for k, v in enumerate(values):
        base = up if v >= 0 else down
        ax.bar(
            0, v, 0.6, bottom=base, color=colours(k), edgecolor="white", label=f"example {k + 1}"
        )
        if abs(v) > 0.05 * span:  # a label only where the slice is tall enough to hold it
            ax.text(0, base + v / 2, f"{v:.3g}", ha="center", va="center", fontsize=8)
        up, down = (up + v, down) if v >= 0 else (up, down + v)
    total = sum(values)
    ax.plot([-0.4, 0.4], [total, total], color="k", lw=2)
    ax.annotate(
        f"sum {total:.3g}",
        (0.4, total),
        xytext=(3, 0),
        textcoords="offset points",
        va="center",
        fontsize=8,
    )
    ax.bar(1, mean, 0.6, color="0.6")
    ax.text(1, mean / 2, f"{mean:.3g}", ha="center", va="center", fontsize=8)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylim(min(down, mean, 0.0) - 0.08 * span, max(up, mean, 0.0) + 0.08 * span)
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["reduction='sum'", "reduction='mean'"])
    ax.set_ylabel(label)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=10)
