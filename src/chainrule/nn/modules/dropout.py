"""``torch.nn.modules.dropout``: dropout (the classes of :mod:`chainrule.nn`)."""

from ..conv import Dropout2d
from ..layers import Dropout

__all__ = ["Dropout", "Dropout2d"]
