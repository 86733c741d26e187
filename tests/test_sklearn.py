"""chainrule's scikit-learn estimators: they pass scikit-learn's own estimator checks, train as
scikit-learn's MLPs do (same loss curve from the same start), and work in pipelines, grid
searches and cross-validation."""

import functools
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier as SklearnClassifier
from sklearn.neural_network import MLPRegressor as SklearnRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import chainrule as cr
from chainrule.sklearn import MLPClassifier, MLPRegressor

# short trainings warn that they have not converged, as scikit-learn's MLPs do
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Checks scikit-learn skips here by itself (never failures): the array-API check needs the
# SCIPY_ARRAY_API environment variable, the pandas one needs pandas.
SKIPPED_BY_SKLEARN = {"check_array_api_input", "check_classifier_data_not_an_array",
                      "check_regressor_data_not_an_array"}  # fmt: skip


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)


@pytest.mark.parametrize(
    "estimator", [MLPClassifier(), MLPRegressor()], ids=lambda e: type(e).__name__
)
def test_scikit_learns_estimator_checks_pass(estimator):
    # no expected failures: every check passes or is skipped by scikit-learn itself
    results = check_estimator(estimator, expected_failed_checks={}, on_skip=None)
    passed = [r["check_name"] for r in results if r["status"] == "passed"]
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= SKIPPED_BY_SKLEARN
    assert len(passed) + len(skipped) == len(results) and len(passed) >= 50


def sklearn_start(widths, seed, activation):
    """The initial weights scikit-learn's MLPs draw for ``random_state=seed``."""
    rng = np.random.RandomState(seed)
    weights = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        bound = np.sqrt((2.0 if activation == "logistic" else 6.0) / (fan_in + fan_out))
        weights.append(
            (rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out))
        )
    return weights


SAME_START = {
    "softmax, Adam, L2": (MLPClassifier, SklearnClassifier, "digits", {"alpha": 0.01}),
    "logistic output, tanh, SGD with Nesterov momentum": (
        MLPClassifier,
        SklearnClassifier,
        "odd",
        {"hidden_layer_sizes": (32, 16), "activation": "tanh", "solver": "sgd",
         "learning_rate_init": 0.05},
    ),
    "logistic hidden, SGD with momentum, batch 64": (
        MLPClassifier,
        SklearnClassifier,
        "digits",
        {"activation": "logistic", "solver": "sgd", "nesterovs_momentum": False,
         "batch_size": 64},
    ),
    "SGD, learning rate scaled down each epoch (invscaling)": (
        MLPClassifier,
        SklearnClassifier,
        "digits",
        {"solver": "sgd", "momentum": 0.0, "learning_rate": "invscaling",
         "learning_rate_init": 0.5, "power_t": 0.25},
    ),
    "regression, one target, SGD": (
        MLPRegressor, SklearnRegressor, "one pixel", {"solver": "sgd", "learning_rate_init": 0.01}
    ),
    "regression, 32 targets, Adam, L2": (
        MLPRegressor, SklearnRegressor, "bottom half", {"alpha": 0.1}
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SAME_START))
def test_from_scikit_learns_start_it_follows_scikit_learns_path(case):
    """Same initial weights, batches in order: the loss per epoch (and the predictions after ten
    epochs) are scikit-learn's, up to float32 rounding: the parameters mean what they mean
    there (alpha's penalty, the loss, the optimizers' update rules, batch_size)."""
    ours_class, theirs_class, task, options = SAME_START[case]
    x, labels = load_digits(return_X_y=True)
    x, labels = x[:400] / 16.0, labels[:400]
    inputs, targets = {
        "digits": (x, labels),
        "odd": (x, labels % 2),
        "one pixel": (x[:, :32], x[:, 40]),
        "bottom half": (x[:, :32], x[:, 32:]),
    }[task]
    options = {"hidden_layer_sizes": (32,), "random_state": 3, "shuffle": False, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = theirs_class(max_iter=10, **options).fit(inputs, targets)
    ours = ours_class(epochs=1, **options).fit(inputs, targets)  # builds the network
    linears = [m for m in ours.model_ if isinstance(m, cr.nn.Linear)]
    widths = [inputs.shape[1], *options["hidden_layer_sizes"], linears[-1].out_features]
    for layer, (w, b) in zip(linears, sklearn_start(widths, 3, options.get("activation", "relu"))):
        layer.load_state_dict({"weight": w.T.astype(np.float32), "bias": b.astype(np.float32)})
    ours.t_ = 0  # that first epoch only built the network: invscaling counts from here
    ours.set_params(warm_start=True, epochs=10).fit(inputs, targets)

    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_, rtol=2e-5)
    if isinstance(ours, MLPClassifier):
        ours_out, theirs_out = ours.predict_proba(inputs), theirs.predict_proba(inputs)
    else:
        ours_out, theirs_out = ours.predict(inputs), theirs.predict(inputs)
    np.testing.assert_allclose(ours_out, theirs_out, atol=2e-4 * np.abs(theirs_out).max())


def test_in_a_pipeline_a_grid_search_and_cross_validation(digits):
    x_train, x_test, y_train, y_test = digits
    pipeline = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=30, random_state=0))
    assert pipeline.fit(x_train, y_train).score(x_test, y_test) > 0.93
    proba = pipeline.predict_proba(x_test[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(axis=1), 1)

    grid = GridSearchCV(
        MLPClassifier(max_iter=20, random_state=0),
        {"hidden_layer_sizes": [(8,), (64,)], "alpha": [1e-4, 1e-2]},
        cv=3,
    )
    grid.fit(x_train, y_train)
    assert grid.best_params_["hidden_layer_sizes"] == (64,)
    assert grid.best_score_ > 0.85 and grid.score(x_test, y_test) > 0.85

    x, y = make_friedman1(n_samples=600, random_state=0)
    regressor = MLPRegressor(
        hidden_layer_sizes=(64,), learning_rate_init=0.01, max_iter=100, random_state=0
    )
    scores = cross_val_score(regressor, x, y, cv=3)  # R^2; scikit-learn's MLP: 0.71-0.77
    assert scores.shape == (3,) and scores.min() > 0.65


def test_fitted_attributes_and_the_chainrule_network(digits):
    x_train, x_test, y_train, y_test = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # `epochs` trains exactly, no warning
        clf = MLPClassifier((32, 16), epochs=5, random_state=0).fit(x_train, y_train)
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5 and clf.t_ == 5 * len(x_train)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] and clf.loss_ == clf.loss_curve_[-1]
    assert [c.shape for c in clf.coefs_] == [(64, 32), (32, 16), (16, 10)]
    assert [b.shape for b in clf.intercepts_] == [(32,), (16,), (10,)]
    assert clf.n_features_in_ == 64 and clf.n_layers_ == 4 and clf.n_outputs_ == 10
    assert clf.out_activation_ == "softmax" and list(clf.classes_) == list(range(10))
    scores = cr.train.predict(clf.model_, x_test.astype(np.float32))
    np.testing.assert_array_equal(clf.predict(x_test), scores.argmax(axis=1))

    labels = np.where(y_train % 2, "odd", "even")
    binary = MLPClassifier((16,), max_iter=20, random_state=0).fit(x_train, labels)
    assert binary.out_activation_ == "logistic" and list(binary.classes_) == ["even", "odd"]
    assert binary.score(x_test, np.where(y_test % 2, "odd", "even")) > 0.85

    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPRegressor(hidden_layer_sizes=(8,), max_iter=3).fit(x_train[:, :32], x_train[:, 40])
    with pytest.raises(ValueError, match="loss='poisson'"):
        MLPRegressor(loss="poisson").fit(x_train[:, :32], x_train[:, 40])


def test_partial_fit_warm_start_and_early_stopping(digits):
    x_train, x_test, y_train, y_test = digits
    clf = MLPClassifier((32,), batch_size=20, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(x_train[:100], y_train[:100])
    for start in list(range(0, 1200, 200)) * 3:  # three passes, 200 examples at a time
        chunk = slice(start, start + 200)
        clf.partial_fit(x_train[chunk], y_train[chunk], classes=np.arange(10))
    assert clf.n_iter_ == 18 and len(clf.loss_curve_) == 18
    assert clf.score(x_test, y_test) > 0.8
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(x_train[:5], y_train[:5] + 10)

    warm = MLPClassifier((32,), epochs=3, warm_start=True, random_state=0).fit(x_train, y_train)
    first = warm.coefs_[0].copy()
    warm.fit(x_train, y_train)  # continues from the weights it has
    assert warm.n_iter_ == 6 and len(warm.loss_curve_) == 6
    assert warm.loss_curve_[3] < warm.loss_curve_[2] and not np.array_equal(first, warm.coefs_[0])

    stopped = MLPClassifier(
        (32,), early_stopping=True, n_iter_no_change=3, tol=1e-3, max_iter=300, random_state=0
    ).fit(x_train, y_train)
    assert stopped.n_iter_ < 300 and len(stopped.validation_scores_) == stopped.n_iter_
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)
    best = int(np.argmax(stopped.validation_scores_))
    assert stopped.n_iter_ - 1 - best >= stopped.n_iter_no_change  # stopped for no progress
    assert stopped.best_loss_ is None and stopped.score(x_test, y_test) > 0.85


def test_chainrule_optimizers_and_clear_errors(digits, capsys):
    x_train, x_test, y_train, y_test = digits
    for optimizer in ("rmsprop", functools.partial(cr.optim.AdamW, lr=3e-3, weight_decay=1e-2)):
        clf = MLPClassifier((32,), optimizer=optimizer, epochs=15, random_state=0)
        assert clf.fit(x_train, y_train).score(x_test, y_test) > 0.85
    MLPClassifier((8,), epochs=2, verbose=True, random_state=0).fit(x_train, y_train)
    assert "Iteration 2, loss = " in capsys.readouterr().out

    for options, message in (
        ({"solver": "lbfgs"}, "solver='lbfgs' is not available"),
        ({"optimizer": "lion"}, "optimizer='lion'; choose from"),
        ({"activation": "swish"}, "activation='swish'; choose from"),
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes must be positive"),
        ({"alpha": -1.0}, "alpha=-1.0 is out of range"),
    ):
        with pytest.raises(ValueError, match=message):
            MLPClassifier(**options).fit(x_train, y_train)


def test_fitting_leaves_chainrules_global_random_generator_alone(digits):
    x_train, _, y_train, _ = digits
    cr.manual_seed(5)
    expected = cr.randn(3).numpy()
    cr.manual_seed(5)
    a = MLPClassifier((16,), epochs=2, random_state=7).fit(x_train, y_train)
    np.testing.assert_array_equal(cr.randn(3).numpy(), expected)
    b = MLPClassifier((16,), epochs=2, random_state=7).fit(x_train, y_train)
    np.testing.assert_array_equal(a.predict_proba(x_train), b.predict_proba(x_train))


def test_the_fitted_network_exports_to_onnx(digits, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x_train, x_test, y_train, _ = digits
    clf = MLPClassifier((32,), epochs=5, random_state=0).fit(x_train, y_train)
    path = cr.onnx.export(clf.model_, tmp_path / "clf.onnx", x_test[:1])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": x_test.astype(np.float32)})
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, clf.predict_proba(x_test), atol=1e-5)
