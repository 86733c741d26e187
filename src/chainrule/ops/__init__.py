"""The differentiable operations, one small class each (see :mod:`chainrule.function`)."""
