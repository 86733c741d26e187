"""Optimizers: turn gradients into better weights (see :mod:`chainrule.optim.rules`)."""

from . import lr_scheduler, rules
from .optimizer import Optimizer
from .optimizers import GD, SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, RMSprop
