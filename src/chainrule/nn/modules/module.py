"""``torch.nn.modules.module``: the base class (the classes of :mod:`chainrule.nn`)."""

from ..module import Module

__all__ = ["Module"]
