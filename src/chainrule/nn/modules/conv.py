"""``torch.nn.modules.conv``: the convolution (the classes of :mod:`chainrule.nn`)."""

from ..conv import Conv2d

__all__ = ["Conv2d"]
