"""``torch.nn.modules.linear``: Linear and Identity (the classes of :mod:`chainrule.nn`)."""

from ..layers import Identity, Linear

__all__ = ["Identity", "Linear"]
