"""Inside the network: gradient flow per layer (sigmoid vs ReLU: vanishing gradients), weight and
activation histograms, first-layer weights as images, a confusion matrix, misclassified examples."""

from __future__ import annotations

import math

from .. import autograd, data, nn, optim
from ..backend import manual_seed, xp
from ..nn import layers as L
from ..tensor import Tensor, as_array
from ..train import Callback, fit
from ..train import metrics as M
from .figures import sign_colormap


class GradientNorms(Callback):
    """Record the norm of each weight's gradient after every batch: ``norms[name]`` is a list."""

    def __init__(self):
        self.norms: dict = {}

    def on_batch_end(self, run, logs, batch_size):
        for name, p in run.model.named_parameters():
            if name.endswith("weight") and p.grad is not None:
                self.norms.setdefault(name, []).append(float(xp.linalg.norm(p.grad._data)))

    def mean_per_layer(self) -> dict:
        return {name: float(xp.mean(values)) for name, values in self.norms.items()}


def gradient_flow(
    activations=("sigmoid", "relu"), depth: int = 6, width: int = 32, epochs: int = 2, seed: int = 0
) -> dict:
    """Train the same deep MLP on the 8x8 digits with each activation; return the mean gradient
    norm of every layer's weights: with sigmoid it shrinks towards the input (vanishing
    gradients), with ReLU it stays level."""
    from ..models import activation

    images, labels = data.load_digits()
    x = data.scale(images, 16.0).reshape(len(images), -1)
    result = {}
    for name in activations:
        manual_seed(seed)
        layers, size = [], 64
        for _ in range(depth):
            layers += [nn.Linear(size, width), activation(name)]
            size = width
        model = nn.Sequential(*layers, nn.Linear(size, 10))
        recorder = GradientNorms()
        fit(
            model,
            nn.CrossEntropyLoss(),
            optim.SGD(model.parameters(), lr=0.05),
            (x, labels),
            epochs=epochs,
            batch_size=32,
            callbacks=[recorder],
            progress=False,
            seed=seed,
        )
        result[name] = recorder.mean_per_layer()
    return result


@autograd.no_grad()
def activations_of(model, x) -> dict:
    """The output of every activation layer of a Sequential model for inputs ``x``."""
    was_training = model.training
    model.eval()
    h, found = Tensor._make(as_array(x), False), {}
    try:
        for i, layer in enumerate(model):
            h = layer(h)
            if getattr(layer, "activation_name", None):
                found[f"{i} {type(layer).__name__}"] = h._data.copy()
    finally:
        model.train(was_training)
    return found


def plot_gradient_flow(flow: dict, path):
    from .figures import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=80)
    for name, per_layer in flow.items():
        ax.semilogy(range(1, len(per_layer) + 1), list(per_layer.values()), "o-", label=name)
    ax.set_xlabel("layer (1 = next to the input)")
    ax.set_ylabel("mean gradient norm of the weights")
    ax.set_title("gradient flow: sigmoid gradients vanish towards the input")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def plot_histograms(model, x, path):
    """Top row: each Linear/Conv layer's weights; bottom row: each activation layer's outputs."""
    from .figures import pyplot, save_png

    plt = pyplot()
    weights = [
        (n, p._data) for n, p in model.named_parameters() if n.endswith("weight") and p.ndim > 1
    ]
    acts = list(activations_of(model, x).items())
    cols = max(len(weights), len(acts), 1)
    fig, axes = plt.subplots(2, cols, figsize=(3 * cols, 5), dpi=70, squeeze=False)
    for ax, (name, w) in zip(axes[0], weights):
        ax.hist(w.ravel(), bins=40, color="tab:blue")
        ax.set_title(f"weights {name}", fontsize=8)
    for ax, (name, a) in zip(axes[1], acts):
        ax.hist(a.ravel(), bins=40, color="tab:orange")
        ax.set_title(f"activations {name}", fontsize=8)
    for ax in list(axes[0][len(weights) :]) + list(axes[1][len(acts) :]):
        ax.axis("off")
    fig.tight_layout()
    return save_png(fig, path)


def first_layer_images(model, image_shape) -> list:
    """Each neuron of the first Linear layer, its weights reshaped to the input image."""
    for layer in model.modules():
        if isinstance(layer, L.Linear):
            if layer.in_features != math.prod(image_shape):
                raise ValueError(
                    f"the first Linear layer has {layer.in_features} inputs, not {image_shape}"
                )
            return [row.reshape(image_shape) for row in layer.weight._data]
    raise ValueError("the model has no Linear layer")


def plot_first_layer(model, image_shape, path, count: int = 32, feature_names=None):
    """The first layer's weights: for images, each neuron's weights as an image (up to
    ``count``); for vectors of features, one map of every neuron's weight on every feature."""
    from .figures import pyplot, save_png

    plt = pyplot()
    if len(image_shape) == 1:
        return _plot_weight_matrix(model, image_shape, path, feature_names, plt, save_png)
    images = first_layer_images(model, image_shape)[:count]
    cols = min(8, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols + 1, 1.3 * rows + 0.6), dpi=80)
    axes = xp.atleast_1d(axes).reshape(rows, cols)
    for ax in axes.ravel():
        ax.axis("off")
    # one scale for all, up to the 99th percentile: a few large weights would wash out the rest
    limit = float(xp.percentile(xp.abs(xp.stack(images)), 99)) or 1.0
    for ax, image in zip(axes.ravel(), images):
        shown = ax.imshow(image, cmap=sign_colormap(), vmin=-limit, vmax=limit)
    fig.colorbar(shown, ax=axes, label="weight", shrink=0.8, extend="both")
    fig.suptitle("first-layer weights: what each neuron looks for (blue +, orange -)")
    return save_png(fig, path)


def _plot_weight_matrix(model, shape, path, feature_names, plt, save_png):
    """The first Linear layer's weights, neurons down and input features across (blue +,
    orange -)."""
    weights = xp.stack(first_layer_images(model, shape))[:64]
    limit = float(xp.abs(weights).max()) or 1.0
    names = feature_names or [f"x{i + 1}" for i in range(shape[0])]
    fig, ax = plt.subplots(figsize=(min(1.0 + 0.45 * shape[0], 9), 3.2), dpi=70)
    shown = ax.imshow(weights, cmap=sign_colormap(), vmin=-limit, vmax=limit, aspect="auto")
    if shape[0] <= 32:
        ax.set_xticks(range(shape[0]), names, rotation=60, fontsize=7)
    ax.set_xlabel("input feature")
    ax.set_ylabel("neuron")
    fig.colorbar(shown, ax=ax, label="weight")
    ax.set_title("first-layer weights: how much each neuron takes of each input", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def plot_confusion(model, x, y, path, image_shape=None, count: int = 16):
    """Left: the confusion matrix on (x, y). Right: a grid of misclassified examples (when the
    inputs are images)."""
    from ..train import predict
    from .figures import pyplot, save_png

    plt = pyplot()
    predicted = M.predicted_classes(predict(model, x))
    actual = M.true_classes(y)
    matrix = M.confusion_matrix(predicted, actual)
    wrong = xp.flatnonzero(predicted != actual)[:count]
    fig = plt.figure(figsize=(12, 5.5), dpi=80)
    ax = fig.add_subplot(1, 2, 1)
    _draw_confusion_matrix(fig, ax, matrix)
    images = image_shape is not None and 2 <= len(image_shape) <= 3  # not rows of a table
    if images and len(wrong):
        cols = 4
        for k, index in enumerate(wrong):
            sub = fig.add_subplot(
                -(-len(wrong) // cols), cols * 2, (k // cols) * cols * 2 + cols + k % cols + 1
            )
            sub.imshow(xp.asarray(x[index]).reshape(image_shape), cmap="gray_r")
            sub.set_title(f"true {actual[index]}, said {predicted[index]}", fontsize=8)
            sub.axis("off")
        fig.text(0.75, 0.97, "misclassified test examples", ha="center", va="top", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save_png(fig, path), matrix


def _draw_confusion_matrix(fig, ax, matrix) -> None:
    """The counts, each written on its cell in black or white, whichever stands out against the
    cell's colour; every class labelled on both axes; a colour scale of the counts."""
    shown = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(shown, ax=ax, label="test examples", fraction=0.046, pad=0.04)
    classes = len(matrix)
    for (i, j), value in xp.ndenumerate(matrix):
        red, green, blue, _ = shown.cmap(shown.norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5  # perceived brightness
        size = 9 if classes <= 10 else max(4, 90 // classes)
        colour = "white" if dark else "black"
        ax.text(j, i, int(value), ha="center", va="center", fontsize=size, color=colour)
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = float(xp.trace(matrix)) / max(matrix.sum(), 1)
    ax.set_title(f"confusion matrix (accuracy {accuracy:.3f})")
