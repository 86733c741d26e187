"""Training: the fit loop, evaluation, prediction, callbacks and metrics."""

from .callbacks import (
    Callback,
    CSVLogger,
    DivergenceError,
    EarlyStopping,
    LRSchedulerCallback,
    ModelCheckpoint,
    NonFiniteError,
    ProgressBar,
    TerminateOnNaN,
)
from .loop import History, evaluate, fit, predict
from .metrics import (
    accuracy,
    confusion_matrix,
    precision_recall,
    regression_metrics,
    top_k_accuracy,
)
