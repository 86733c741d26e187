"""Optimizers: turn gradients into better weights (see :mod:`chainrule.optim.rules`)."""

from . import lr_scheduler, rules, spec
from .lbfgs import LBFGS
from .optimizer import OPTIMIZER_CLASSES, Optimizer, stepping_optimizers
from .optimizers import GD, SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, RMSprop
