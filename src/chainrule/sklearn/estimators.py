"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's estimators, trained by chainrule."""

from __future__ import annotations

from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted

from ..backend import xp
from ..nn import functional as F
from .base import BaseMLP


class MLPClassifier(ClassifierMixin, BaseMLP):
    """A multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by chainrule.

    Softmax and cross-entropy over the classes (one logistic output for two classes, as
    scikit-learn). Fitted attributes as scikit-learn's (``classes_``, ``loss_curve_``,
    ``n_iter_``, ``coefs_``, ``intercepts_``, ``n_features_in_``...), plus ``model_``, the
    chainrule network.

    Example:
        >>> clf = MLPClassifier((64,), max_iter=30, random_state=0).fit(X_train, y_train)
        >>> clf.score(X_test, y_test)
    """

    def _prepare_targets(self, y, first_pass, classes=None):
        check_classification_targets(y)
        if type_of_target(y) == "multilabel-indicator" or y.ndim != 1:
            raise ValueError("MLPClassifier: multi-label targets are not supported")
        if first_pass:
            self.classes_ = unique_labels(y if classes is None else classes)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"MLPClassifier needs at least 2 classes; the targets have 1 class "
                    f"({self.classes_[0]!r})"
                )
        unknown = xp.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(f"`y` has classes not in `self.classes_`: {unknown}")
        index = xp.searchsorted(self.classes_, y)
        if len(self.classes_) == 2:
            return index.astype(xp.float32)[:, None], 1
        return index.astype(xp.int64), len(self.classes_)

    def _data_loss(self, output, target):
        if self.n_outputs_ == 1:
            return F.binary_cross_entropy_with_logits(output, target)
        return F.cross_entropy(output, target)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state.

        Args:
            classes: every class that will appear, required on the first call.
        """
        if not hasattr(self, "model_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        elif classes is not None and not xp.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(
                f"`classes={list(classes)}` is not the same as on the first call to partial_fit"
            )
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Probability of each class (columns in the order of ``classes_``), float64."""
        scores, _ = self._outputs(X)
        scores = scores.astype(xp.float64)
        if self.n_outputs_ == 1:
            p = 1 / (1 + xp.exp(-scores))
            return xp.hstack([1 - p, p])
        shifted = xp.exp(scores - scores.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        return xp.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each example."""
        scores, _ = self._outputs(X)
        index = (scores[:, 0] > 0).astype(int) if self.n_outputs_ == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    @property
    def out_activation_(self) -> str:
        check_is_fitted(self, "model_")
        return "logistic" if self.n_outputs_ == 1 else "softmax"


class MLPRegressor(RegressorMixin, BaseMLP):
    """A multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by chainrule.

    Half the squared error, identity output, one output per target column. Fitted attributes
    as scikit-learn's, plus ``model_``, the chainrule network.

    Example:
        >>> reg = MLPRegressor(hidden_layer_sizes=(64,), random_state=0).fit(X_train, y_train)
        >>> reg.score(X_test, y_test)                # R^2
    """

    def __init__(
        self,
        loss="squared_error",
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
        # scikit-learn lists every parameter of each estimator: get_params reads this signature
        self.loss = loss
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            optimizer=optimizer,
            epochs=epochs,
        )

    def _prepare_targets(self, y, first_pass, classes=None):
        if self.loss != "squared_error":
            raise ValueError(f"loss={self.loss!r}: chainrule's MLPRegressor has 'squared_error'")
        self._one_column = y.ndim == 1
        y = xp.asarray(y, dtype=xp.float32)
        return (y[:, None] if y.ndim == 1 else y), (1 if y.ndim == 1 else y.shape[1])

    def _data_loss(self, output, target):
        return F.mse_loss(output, target) * 0.5

    def _gradient_scale(self) -> float:
        # scikit-learn reports the squared error averaged over the targets but trains on its
        # gradient summed over them (k times larger for k targets; the same for one)
        return float(self.n_outputs_)

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the current weights and optimizer state."""
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """The network's outputs (one column per target, or 1-D for a 1-D target)."""
        outputs, dtype = self._outputs(X)
        outputs = outputs.astype(dtype)
        return outputs.ravel() if self.n_outputs_ == 1 and self._one_column else outputs

    @property
    def out_activation_(self) -> str:
        check_is_fitted(self, "model_")
        return "identity"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
