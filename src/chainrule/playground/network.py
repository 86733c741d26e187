"""The network, loss, optimizer and regularisation of a playground setup, from chainrule's parts.

The network is an ordinary :class:`~chainrule.nn.Sequential`: the chosen features
(:class:`~chainrule.nn.PlaneFeatures`), then per hidden layer a ``Linear``, its activation and
dropout, then a ``Linear`` output layer. The loss pairs with the output: softmax +
cross-entropy (``CrossEntropyLoss`` on the logits), sigmoid + binary cross-entropy
(``BCEWithLogitsLoss``), or a linear output with the mean squared error.

L1 and L2 regularisation are added to the loss, as in the TensorFlow playground:
``J = loss + l1 * sum |w| + l2 / 2 * sum w^2`` over the weights (not the biases), so their
gradients ``l1 sign(w)`` and ``l2 w`` reach every optimizer by backpropagation.
"""

from __future__ import annotations

from .. import models, nn, optim
from .points import Points


def outputs_of(setup, points: Points) -> int:
    """Output neurons: one per class for softmax, one for a sigmoid or a regression."""
    return len(points.classes) if setup.output == "softmax" else 1


def build_network(setup, points: Points) -> nn.Sequential:
    """Features -> (Linear -> activation [-> dropout]) per hidden layer -> Linear."""
    layers = [nn.PlaneFeatures(setup.features, points.inputs)]
    width = len(setup.features)
    for size, name in zip(setup.hidden, setup.activations):
        layers += [nn.Linear(width, size), activation(name)]
        if setup.dropout:
            layers.append(nn.Dropout(setup.dropout))
        width = size
    layers.append(nn.Linear(width, outputs_of(setup, points)))
    return nn.Sequential(*layers)


def activation(name: str) -> nn.Module:
    """The activation layer of a name; ``linear`` is none at all (``Identity``)."""
    return nn.Identity() if name == "linear" else models.activation(name)


def build_loss(setup) -> nn.Module:
    return {
        "softmax": nn.CrossEntropyLoss,
        "sigmoid": nn.BCEWithLogitsLoss,
        "linear": nn.MSELoss,
    }[setup.output]()


def build_optimizer(setup, parameters) -> optim.Optimizer:
    """The optimizer of ``chainrule.optim`` the setup names, with the settings the page offers
    for it (built from the optimizer's own description, :mod:`chainrule.optim.spec`)."""
    cls = optim.OPTIMIZER_CLASSES[setup.optimizer]
    return optim.spec.build(cls, list(parameters), setup.optimizer_values())


def weights_of(model) -> list:
    """The weight matrices of the Linear layers (what L1 and L2 shrink; biases are left free)."""
    return [layer.weight for layer in model if isinstance(layer, nn.Linear)]


def penalty(setup, weights):
    """``l1 * sum |w| + l2 / 2 * sum w^2`` as a tensor in the graph; None without either."""
    terms = []
    if setup.l1:
        terms.append(setup.l1 * sum(w.abs().sum() for w in weights))
    if setup.l2:
        terms.append(setup.l2 / 2 * sum((w * w).sum() for w in weights))
    return sum(terms) if terms else None


def describe(setup, points: Points) -> str:
    """The network in a line: ``x, y -> 4 tanh -> 2 tanh -> 2 softmax``."""
    hidden = [f"{size} {name}" for size, name in zip(setup.hidden, setup.activations)]
    outputs = outputs_of(setup, points)
    tail = f"{outputs} {setup.output}"
    return " -> ".join([", ".join(setup.features), *hidden, tail])


def is_fit_line(setup, points: Points) -> bool:
    """The best-fit-line mode: a regression on one input x by one linear neuron y = w x + b."""
    return (
        points.task == "regression"
        and points.inputs == 1
        and not setup.hidden
        and setup.features == ["x"]
    )
