"""Regression metrics (MSE, RMSE, MAE, R^2) against scikit-learn, summed over batches, in fit's
history (training and validation) and across a resume in the middle of an epoch."""

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

import chainrule as cr
from chainrule import nn, optim
from chainrule.train import ModelCheckpoint, evaluate, fit, predict
from chainrule.train.metrics import RegressionSums, regression_metrics
from crashing import Crash, CrashAt


def test_regression_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    for offset in (0.0, 1e6):  # a large offset must not swamp the spread (R^2's denominator)
        actual = offset + rng.standard_normal(200)
        predicted = actual + 0.3 * rng.standard_normal(200)
        got = regression_metrics(predicted, actual)
        assert got["mse"] == pytest.approx(mean_squared_error(actual, predicted), rel=1e-9)
        assert got["rmse"] == pytest.approx(mean_squared_error(actual, predicted) ** 0.5)
        assert got["mae"] == pytest.approx(mean_absolute_error(actual, predicted), rel=1e-9)
        assert got["r2"] == pytest.approx(r2_score(actual, predicted), abs=1e-9)
    assert regression_metrics(np.ones(3), np.ones(3))["r2"] is None  # no spread: undefined


def test_sums_over_batches_equal_the_whole_and_scale_to_the_targets_units():
    rng = np.random.default_rng(1)
    actual, predicted = rng.standard_normal((2, 300)) * [[3.0], [2.0]] + 5.0
    sums = RegressionSums(scale=10.0)
    for start in range(0, 300, 64):
        sums.update(predicted[start : start + 64, None], actual[start : start + 64])
    whole = regression_metrics(predicted, actual)
    batched = sums.result()
    assert batched["mse"] == pytest.approx(whole["mse"] * 100, rel=1e-12)
    assert batched["mae"] == pytest.approx(whole["mae"] * 10, rel=1e-12)
    assert batched["r2"] == pytest.approx(whole["r2"], abs=1e-12)  # R^2 has no units
    copy = RegressionSums(10.0)
    copy.load_state_dict(sums.state_dict())
    assert copy.result() == batched


def linear_problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(256)).astype(np.float32)
    return (x[:200], y[:200, None]), (x[200:], y[200:, None])


def test_fit_reports_regression_metrics_for_training_and_validation():
    train, val = linear_problem()
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1))
    history = fit(
        model,
        nn.MSELoss(),
        optim.SGD(model.parameters(), lr=0.1),
        train,
        epochs=5,
        validation_data=val,
        progress=False,
        target_std=2.0,
    )
    assert {"loss", "mse", "rmse", "mae", "r2", "val_mse", "val_r2"} <= set(history.keys)
    assert "accuracy" not in history.keys and "val_accuracy" not in history.keys
    # validation metrics: the model's predictions, errors in units twice the targets'
    outputs = predict(model, val[0])
    assert history["val_mse"][-1] == pytest.approx(4 * mean_squared_error(val[1], outputs))
    assert history["val_mae"][-1] == pytest.approx(2 * mean_absolute_error(val[1], outputs))
    assert history["val_r2"][-1] == pytest.approx(r2_score(val[1], outputs), abs=1e-6)
    assert history["val_loss"][-1] == pytest.approx(mean_squared_error(val[1], outputs), rel=1e-5)
    assert history["r2"][0] < history["r2"][-1] and history["r2"][-1] > 0.95
    tested = evaluate(model, nn.MSELoss(), val, batch_size=7, target_std=2.0)
    assert tested["r2"] == pytest.approx(history["val_r2"][-1], abs=1e-9)


def test_a_regression_resumed_mid_epoch_ends_where_an_uninterrupted_one_does(tmp_path):
    train, val = linear_problem()

    def run(path, crash=None, resume=False):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        callbacks = [ModelCheckpoint(path, every_n_batches=3), *([crash] if crash else [])]
        history = fit(
            model,
            nn.HuberLoss(),
            optim.Adam(model.parameters(), lr=1e-2),
            train,
            epochs=3,
            batch_size=16,
            validation_data=val,
            callbacks=callbacks,
            progress=False,
            resume=ModelCheckpoint.load(path) if resume else None,
            target_std=3.0,
        )
        return model, history

    model, history = run(tmp_path / "a.safetensors")
    with pytest.raises(Crash):
        run(tmp_path / "b.safetensors", crash=CrashAt(epoch=1, batch=8))
    state = ModelCheckpoint.load(tmp_path / "b.safetensors")
    assert (state["epoch"], state["next_batch"]) == (1, 6)  # in the middle of an epoch
    assert state["epoch_metrics"]["regression"]["count"] == 6 * 16
    resumed, resumed_history = run(tmp_path / "b.safetensors", resume=True)
    for key in ("loss", "mse", "mae", "r2", "val_r2"):
        assert resumed_history[key] == history[key], key
    for a, b in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
