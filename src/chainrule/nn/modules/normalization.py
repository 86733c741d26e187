"""``torch.nn.modules.normalization``: LayerNorm (the classes of :mod:`chainrule.nn`)."""

from ..layers import LayerNorm

__all__ = ["LayerNorm"]
