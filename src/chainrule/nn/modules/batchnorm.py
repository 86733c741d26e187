"""``torch.nn.modules.batchnorm``: batch normalisation (the classes of :mod:`chainrule.nn`)."""

from ..conv import BatchNorm2d
from ..layers import BatchNorm1d

__all__ = ["BatchNorm1d", "BatchNorm2d"]
