"""What chainrule's scikit-learn MLPs share: the parameters, the network, and the training loop
(chainrule's ``fit``) with scikit-learn's penalty, stopping rules and fitted attributes."""

from __future__ import annotations

import warnings
from numbers import Integral

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .. import nn, optim
from ..backend import fork_rng, manual_seed, xp
from ..tensor import as_array
from ..train import Callback, fit, predict

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6

    def validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    # chainrule's own
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
}
OPTIMIZERS = {
    "sgd": lambda ps, e: optim.SGD(ps, lr=e.learning_rate_init),
    "momentum": lambda ps, e: optim.SGD(ps, lr=e.learning_rate_init, momentum=e.momentum),
    "nesterov": lambda ps, e: optim.SGD(
        ps, lr=e.learning_rate_init, momentum=e.momentum, nesterov=True
    ),
    "adam": lambda ps, e: optim.Adam(
        ps, lr=e.learning_rate_init, betas=(e.beta_1, e.beta_2), eps=e.epsilon
    ),
    "adamw": lambda ps, e: optim.AdamW(
        ps, lr=e.learning_rate_init, betas=(e.beta_1, e.beta_2), eps=e.epsilon
    ),
    "rmsprop": lambda ps, e: optim.RMSprop(ps, lr=e.learning_rate_init),
    "adagrad": lambda ps, e: optim.Adagrad(ps, lr=e.learning_rate_init),
}


def glorot(layer: nn.Linear, activation: str) -> nn.Linear:
    """scikit-learn's start: W and b ~ U(-r, r), r = sqrt(6 / (fan_in + fan_out)) (2 instead
    of 6 for the logistic activation)."""
    factor = 2.0 if activation == "logistic" else 6.0
    bound = (factor / (layer.in_features + layer.out_features)) ** 0.5
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.uniform_(layer.bias, -bound, bound)
    return layer


class BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, building the network, the
    training loop with scikit-learn's stopping rules, and the fitted attributes."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        optimizer=None,
        epochs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.optimizer = optimizer
        self.epochs = epochs

    # -- what the subclasses say -----------------------------------------------------------------
    def _prepare_targets(self, y, first_pass: bool, classes=None):
        """(training targets for the loss, number of outputs)."""
        raise NotImplementedError

    def _data_loss(self, output, target):
        """The loss scikit-learn reports (without the penalty)."""
        raise NotImplementedError

    def _gradient_scale(self) -> float:
        """What scikit-learn's gradient is, in multiples of the reported loss's gradient."""
        return 1.0

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y):
        """Train on (X, y) for up to ``max_iter`` epochs (or exactly ``epochs``).

        Returns:
            self
        """
        return self._fit(X, y, incremental=False)

    def _fit(self, X, y, incremental: bool, classes=None):
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        self._check_parameters()
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=isinstance(self, RegressorMixin),
            dtype=(xp.float64, xp.float32),
            reset=first_pass,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        targets, outputs = self._prepare_targets(y, first_pass, classes)
        if first_pass:
            self._random_state = check_random_state(self.random_state)
            self._initialize(X.shape[1], outputs)
        elif outputs != self.n_outputs_:
            raise ValueError(
                f"{type(self).__name__}: the targets have {outputs} outputs now, "
                f"{self.n_outputs_} when the network was built"
            )
        x = xp.asarray(X, dtype=xp.float32)
        early_stopping = self.early_stopping and not incremental
        validation = None
        if early_stopping:
            x, x_val, targets, _, _, y_val = self._split(x, targets, y)
            validation = (x_val, y_val)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        self._train(x, targets, validation, incremental)
        return self

    def _check_parameters(self) -> None:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
        if not all(isinstance(s, Integral) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={self.activation!r}; choose from {', '.join(ACTIVATIONS)}"
            )
        if self.optimizer is None and self.solver not in ("adam", "sgd"):
            raise ValueError(
                f"solver={self.solver!r} is not available in chainrule's MLPs: use 'adam' or "
                f"'sgd', or optimizer= one of {', '.join(OPTIMIZERS)}"
            )
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise ValueError(
                f"learning_rate={self.learning_rate!r}; choose from constant, invscaling, adaptive"
            )
        if isinstance(self.optimizer, str) and self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        checks = {
            "alpha": self.alpha >= 0,
            "learning_rate_init": self.learning_rate_init > 0,
            "power_t": self.power_t >= 0,
            "max_iter": isinstance(self.max_iter, Integral) and self.max_iter >= 1,
            "tol": self.tol >= 0,
            "n_iter_no_change": self.n_iter_no_change >= 1,
            "validation_fraction": 0 < self.validation_fraction < 1,
            "epochs": self.epochs is None or isinstance(self.epochs, Integral) and self.epochs >= 1,
            "batch_size": self.batch_size == "auto" or isinstance(self.batch_size, Integral),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"{type(self).__name__}: {name}={getattr(self, name)!r} is out of range"
                )
        self._sizes = [int(s) for s in sizes]

    def _initialize(self, features: int, outputs: int) -> None:
        """Build a fresh network (seeded from ``random_state``) and reset the training record."""
        with fork_rng():  # the user's global chainrule generator is left as it was
            manual_seed(int(self._random_state.randint(2**31 - 1)))
            widths = [features, *self._sizes, outputs]
            layers = []
            for a, b in zip(widths, widths[1:]):
                layers += [glorot(nn.Linear(a, b), self.activation), ACTIVATIONS[self.activation]()]
            self.model_ = nn.Sequential(*layers[:-1])
        self.n_outputs_ = outputs
        self.n_layers_ = len(self._sizes) + 2
        self.n_iter_, self.t_ = 0, 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -xp.inf if self.early_stopping else None
        self.best_loss_ = None if self.early_stopping else xp.inf

    def _make_optimizer(self):
        parameters = list(self.model_.parameters())
        if callable(self.optimizer):
            return self.optimizer(parameters)
        name = self.optimizer
        if name is None:
            if self.solver == "adam":
                name = "adam"
            elif self.momentum > 0:
                name = "nesterov" if self.nesterovs_momentum else "momentum"
            else:
                name = "sgd"
        return OPTIMIZERS[name](parameters, self)

    def _split(self, x, targets, y) -> list:
        """[x, x_val, targets, targets_val, y, y_val], stratified for a classifier."""
        stratify = y if isinstance(self, ClassifierMixin) else None
        parts = train_test_split(
            x,
            targets,
            y,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if len(parts[1]) < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        return parts

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if not 1 <= self.batch_size <= n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped",
                stacklevel=5,
            )
        return min(max(self.batch_size, 1), n)

    def _train(self, x, targets, validation, incremental: bool) -> None:
        """chainrule's ``fit``, with a penalty of alpha/2 ||W||^2 / batch size in the loss (as
        scikit-learn) and a callback for scikit-learn's stopping rules. One epoch when
        ``incremental`` (``partial_fit``)."""
        stop = self.epochs is None and not incremental
        epochs = 1 if incremental else self.epochs or self.max_iter
        weights = [layer.weight for layer in self.model_ if isinstance(layer, nn.Linear)]

        def loss_fn(output, target):
            loss = self._data_loss(output, target)
            reported = loss.item()
            if scale != 1:
                loss = loss * scale
            if self.alpha:
                squares = (weights[0] * weights[0]).sum()
                for w in weights[1:]:
                    squares = squares + (w * w).sum()
                penalty = squares * (0.5 * self.alpha / len(output))
                reported += penalty.item()
                loss = loss + penalty
            stopping.record(reported, len(output))
            return loss

        scale = self._gradient_scale()
        stopping = SklearnStopping(self, validation, len(x), stop)
        fit(
            self.model_,
            loss_fn,
            self._optimizer,
            (x, targets),
            epochs=epochs,
            batch_size=self._batch_size(len(x)),
            callbacks=[stopping],
            accuracy=False,
            shuffle=self.shuffle,
            seed=int(self._random_state.randint(2**31 - 1)),
            progress=False,
        )
        if validation is not None and stopping.best_state is not None:
            self.model_.load_state_dict(stopping.best_state)
        if stop and not stopping.converged:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,  # the user's call to fit
            )

    # -- after fitting ---------------------------------------------------------------------------
    def _outputs(self, X):
        """The network's outputs for X (validated), as float32."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=(xp.float64, xp.float32), reset=False)
        return predict(self.model_, xp.asarray(X, dtype=xp.float32)), X.dtype

    @property
    def coefs_(self) -> list:
        """Weight matrices as scikit-learn lays them out: (inputs, outputs) per layer."""
        check_is_fitted(self, "model_")
        return [as_array(m.weight).T.copy() for m in self.model_ if isinstance(m, nn.Linear)]

    @property
    def intercepts_(self) -> list:
        check_is_fitted(self, "model_")
        return [as_array(m.bias).copy() for m in self.model_ if isinstance(m, nn.Linear)]


class SklearnStopping(Callback):
    """scikit-learn's bookkeeping after each epoch: ``loss_curve_``, ``n_iter_``, ``t_``, the
    validation score with early stopping, the ``sgd`` solver's learning-rate schedule
    (``invscaling``: lr_init / (t_ + 1)^power_t; ``adaptive``: divided by 5 instead of
    stopping), and the stop when the loss (or the score) has not improved by ``tol`` for more
    than ``n_iter_no_change`` epochs in a row."""

    def __init__(self, estimator: BaseMLP, validation, samples: int, stop: bool):
        self.estimator, self.validation, self.samples = estimator, validation, samples
        self.stop = stop
        self.best_state, self.converged = None, False
        self.loss_sum, self.count = 0.0, 0

    def record(self, loss: float, batch_size: int) -> None:
        """One batch's loss as scikit-learn reports it (the epoch's is their mean)."""
        self.loss_sum += loss * batch_size
        self.count += batch_size

    def on_epoch_end(self, run, logs) -> None:
        e = self.estimator
        e.n_iter_ += 1
        e.t_ += self.samples
        e.loss_ = self.loss_sum / self.count
        self.loss_sum, self.count = 0.0, 0
        e.loss_curve_.append(e.loss_)
        if e.verbose:
            print(f"Iteration {e.n_iter_}, loss = {e.loss_:.8f}")
        if self.validation is not None:
            score = e.score(*self.validation)
            e.validation_scores_.append(score)
            if e.verbose:
                print(f"Validation score: {score:f}")
            improved = score >= e.best_validation_score_ + e.tol
            if score > e.best_validation_score_:
                e.best_validation_score_ = score
                self.best_state = e.model_.state_dict()
        else:
            improved = e.loss_ <= e.best_loss_ - e.tol
            e.best_loss_ = min(e.best_loss_, e.loss_)
        e._no_improvement_count = 0 if improved else e._no_improvement_count + 1
        schedule = e.learning_rate if e.optimizer is None and e.solver == "sgd" else "constant"
        if schedule == "invscaling":
            set_lr(run.optimizer, e.learning_rate_init / (e.t_ + 1) ** e.power_t)
        if self.stop and e._no_improvement_count > e.n_iter_no_change:
            what = "Validation score" if self.validation is not None else "Training loss"
            message = (
                f"{what} did not improve more than tol={e.tol:f} for {e.n_iter_no_change} "
                "consecutive epochs."
            )
            lr = run.optimizer.param_groups[0]["lr"]
            if schedule == "adaptive" and lr > 1e-6:
                set_lr(run.optimizer, lr / 5)
                e._no_improvement_count = 0
                message += f" Setting learning rate to {lr / 5:f}"
            else:
                self.converged = run.stop_training = True
                message += (
                    " Stopping."
                    if schedule != "adaptive"
                    else " Learning rate too small. Stopping."
                )
            if e.verbose:
                print(message)


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
