"""``torch.nn.modules.flatten``: Flatten and Unflatten (the classes of :mod:`chainrule.nn`)."""

from ..layers import Flatten, Unflatten

__all__ = ["Flatten", "Unflatten"]
