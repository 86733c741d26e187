"""``torch.nn.modules.activation``: the activations (the classes of :mod:`chainrule.nn`)."""

from ..layers import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh

__all__ = ["GELU", "LeakyReLU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Softplus", "Tanh"]
