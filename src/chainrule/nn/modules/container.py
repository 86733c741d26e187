"""``torch.nn.modules.container``: the containers (the classes of :mod:`chainrule.nn`)."""

from ..containers import ModuleDict, ModuleList, ParameterDict, ParameterList
from ..module import Sequential

__all__ = ["ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Sequential"]
