"""Training: the fit loop, evaluation, prediction, callbacks and metrics."""

from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LRScheduler,
    ModelCheckpoint,
    NonFiniteError,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .loop import History, evaluate, fit, predict
from .metrics import accuracy, confusion_matrix, precision_recall, top_k_accuracy
