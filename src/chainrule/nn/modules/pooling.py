"""``torch.nn.modules.pooling``: the pooling layers (the classes of :mod:`chainrule.nn`)."""

from ..conv import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d"]
