"""The fit loop, callbacks, metrics, and networks that really learn (digits, spirals)."""

import io
import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import data, nn, optim
from chainrule.train import (
    CSVLogger,
    EarlyStopping,
    LRSchedulerCallback,
    ModelCheckpoint,
    NonFiniteError,
    ProgressBar,
    TerminateOnNaN,
    evaluate,
    fit,
    metrics,
    predict,
)
from crashing import Crash, CrashAt


def digits_split():
    x, y = data.load_digits()
    x = data.scale(x, 16.0).reshape(len(x), -1)
    return data.train_val_split(x, y, val_fraction=0.2, seed=0, stratify=y)


def small_mlp(inputs=64, hidden=64, outputs=10, seed=0):
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def test_a_small_mlp_learns_the_8x8_digits():
    train, test = digits_split()
    model = small_mlp()
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters(), lr=3e-3),
        train,
        epochs=25,
        batch_size=32,
        validation_data=test,
        progress=False,
    )
    assert history["loss"][-1] < history["loss"][0] / 5
    assert evaluate(model, nn.CrossEntropyLoss(), test)["accuracy"] >= 0.95
    assert history.keys[:4] == ["epoch", "loss", "accuracy", "seconds"]


def test_a_small_mlp_untangles_two_spirals():
    x, y = data.spirals(n=600, seed=0)
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2)
    )
    fit(
        model,
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters(), lr=1e-2),
        (x, y),
        epochs=150,
        batch_size=64,
        progress=False,
    )
    assert evaluate(model, nn.CrossEntropyLoss(), (x, y))["accuracy"] >= 0.97


def test_full_batch_gradient_descent():
    x, y = data.blobs(n=300, seed=0)
    model = small_mlp(2, 16, 3)
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        optim.GD(model.parameters(), lr=0.1),
        (x, y),
        epochs=60,
        batch_size=None,
        progress=False,
    )
    assert len(history) == 60 and history["accuracy"][-1] > 0.9
    assert all(b <= a + 1e-6 for a, b in zip(history["loss"], history["loss"][1:]))


def test_binary_one_vs_rest_accuracy_uses_the_logit_sign():
    x, y = data.load_digits()
    x = data.scale(x, 16.0).reshape(len(x), -1)
    target = data.one_vs_rest(y, 7)[:, None]
    model = small_mlp(64, 32, 1)
    history = fit(
        model,
        nn.BCEWithLogitsLoss(),
        optim.Adam(model.parameters(), lr=1e-2),
        (x, target),
        epochs=10,
        progress=False,
    )
    assert history["accuracy"][-1] > 0.98


def test_predict_returns_outputs_in_eval_mode():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5))
    x = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32)
    out = predict(model, x, batch_size=3)
    assert out.shape == (7, 4) and model.training
    np.testing.assert_allclose(out, model[0](cr.tensor(x)).detach().numpy(), rtol=1e-6)


def test_early_stopping_stops_and_restores_the_best_weights():
    train, test = digits_split()
    model = small_mlp()
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=2.0),
        train,
        epochs=50,
        validation_data=test,
        callbacks=[stopper],
        progress=False,
    )
    assert len(history) < 50
    best = min(history["val_loss"])
    assert stopper.best == best
    assert evaluate(model, nn.CrossEntropyLoss(), test)["loss"] == pytest.approx(best, rel=1e-5)
    with pytest.raises(KeyError, match="validation_data"):
        fit(
            model,
            nn.CrossEntropyLoss(),
            optim.SGD(model.parameters(), lr=0.1),
            train,
            callbacks=[EarlyStopping()],
            progress=False,
        )


def test_lr_scheduler_callback_with_a_schedule_or_a_function():
    train, _ = digits_split()
    model = small_mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        opt,
        train,
        epochs=3,
        progress=False,
        callbacks=[LRSchedulerCallback(optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))],
    )
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        opt,
        train,
        epochs=3,
        progress=False,
        callbacks=[LRSchedulerCallback(lambda epoch: 0.01 * (epoch + 1))],
    )
    assert history["lr"] == pytest.approx([0.01, 0.02, 0.03])


def test_reduce_lr_on_plateau_callback():
    x, y = np.zeros((8, 2), dtype=np.float32), np.zeros(8, dtype=np.int64)
    model = small_mlp(2, 4, 2)
    opt = optim.SGD(model.parameters(), lr=1e-6)  # the loss barely moves: a plateau
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        opt,
        (x, y),
        epochs=6,
        progress=False,
        callbacks=[LRSchedulerCallback(plateau, monitor="loss")],
    )
    assert history["lr"][:3] == [1e-6] * 3 and history["lr"][-1] == pytest.approx(2.5e-7)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_names_the_parameter():
    x = np.full((8, 64), 1e3, dtype=np.float32)
    y = np.zeros(8, dtype=np.int64)
    model = small_mlp()
    with pytest.raises(NonFiniteError, match=r"parameter '\d\.(weight|bias)'"):
        fit(
            model,
            nn.CrossEntropyLoss(),
            optim.SGD(model.parameters(), lr=1e30),
            (x, y),
            epochs=5,
            callbacks=[TerminateOnNaN()],
            progress=False,
        )


def test_csv_logger_and_progress_lines(tmp_path):
    train, _ = digits_split()
    model = small_mlp()
    stream = io.StringIO()
    fit(
        model,
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters()),
        train,
        epochs=2,
        callbacks=[ProgressBar(stream=stream), CSVLogger(tmp_path / "h.csv")],
    )
    lines = stream.getvalue().strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  loss") and "samples/s" in lines[0]
    csv = (tmp_path / "h.csv").read_text().splitlines()
    assert csv[0].startswith("epoch,loss,accuracy") and len(csv) == 3


def test_progress_bar_in_a_terminal_shows_rate_and_eta():
    train, test = digits_split()
    model = small_mlp()
    stream = io.StringIO()
    fit(
        model,
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters()),
        train,
        epochs=1,
        callbacks=[ProgressBar(stream=stream, interactive=True)],
    )
    text = stream.getvalue()
    assert "epoch 1/1" in text and "sample/s" in text and "loss" in text and "<" in text
    assert "100%" in text and "acc" in text


def test_progress_bar_at_80_columns_keeps_the_validation_numbers():
    """The numbers come before the bar: a narrow terminal cuts the bar, not them."""
    train, test = digits_split()
    model = small_mlp()
    stream = io.StringIO()
    fit(
        model,
        nn.CrossEntropyLoss(),
        optim.Adam(model.parameters()),
        train,
        epochs=10,
        validation_data=test,
        callbacks=[ProgressBar(stream=stream, interactive=True, ncols=80)],
    )
    lines = [line for line in re.split(r"[\r\n]", stream.getvalue()) if line.strip()]
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert re.search(
        r"epoch 10/10 loss \d\.\d{4} acc \d\.\d{4} val_loss \d\.\d{4} val_acc", lines[-1]
    )


@pytest.mark.parametrize("every", [None, 7])
def test_resuming_from_a_checkpoint_gives_the_same_weights(tmp_path, every):
    train, test = digits_split()

    def run(path, crash=None, resume=False):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))
        opt = optim.Adam(model.parameters(), lr=1e-2)
        callbacks = [
            ModelCheckpoint(path, every_n_batches=every),
            LRSchedulerCallback(optim.lr_scheduler.StepLR(opt, 1, 0.7)),
            EarlyStopping(patience=100),
            *([crash] if crash else []),
        ]
        state = ModelCheckpoint.load(path) if resume else None
        fit(
            model,
            nn.CrossEntropyLoss(),
            opt,
            train,
            epochs=4,
            validation_data=test,
            callbacks=callbacks,
            progress=False,
            resume=state,
        )
        return model

    uninterrupted = run(tmp_path / "a.safetensors")
    with pytest.raises(Crash):
        run(tmp_path / "b.safetensors", crash=CrashAt(epoch=2, batch=20))
    state = ModelCheckpoint.load(tmp_path / "b.safetensors")
    if every:  # the last checkpoint was taken mid-epoch, after batch 14 of epoch 3
        assert (state["epoch"], state["next_batch"]) == (2, 14)
    else:
        assert (state["epoch"], state["next_batch"]) == (1, 45)
    resumed = run(tmp_path / "b.safetensors", resume=True)
    for (name, a), b in zip(uninterrupted.named_parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=name)


def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import confusion_matrix, precision_score, recall_score

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((50, 4))
    labels = rng.integers(0, 4, 50)
    predicted = logits.argmax(1)
    assert metrics.accuracy(logits, labels) == pytest.approx((predicted == labels).mean())
    assert metrics.accuracy(logits, np.eye(4)[labels]) == metrics.accuracy(logits, labels)
    assert metrics.top_k_accuracy(logits, labels, k=4) == 1.0
    top2 = np.argsort(-logits, 1)[:, :2]
    assert metrics.top_k_accuracy(logits, labels, 2) == pytest.approx(
        (top2 == labels[:, None]).any(1).mean()
    )
    matrix = metrics.confusion_matrix(predicted, labels, 4)
    np.testing.assert_array_equal(matrix, confusion_matrix(labels, predicted))
    precision, recall = metrics.precision_recall(matrix)
    np.testing.assert_allclose(precision, precision_score(labels, predicted, average=None))
    np.testing.assert_allclose(recall, recall_score(labels, predicted, average=None))
    assert metrics.accuracy(np.array([[2.0], [-1.0]]), np.array([[1.0], [1.0]])) == 0.5


def test_one_name_per_thing_and_no_import_cycle():
    """The schedules keep PyTorch's names (optim.lr_scheduler); the callback that steps them
    during fit has its own; callbacks.py does not import the loop that imports it."""
    import ast
    import pathlib

    from chainrule import train

    assert not hasattr(train, "LRScheduler") and not hasattr(train, "ReduceLROnPlateau")
    source = pathlib.Path(train.__file__).parent / "callbacks.py"
    imported = [
        node.module
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ImportFrom)
    ]
    assert "loop" not in imported and not any(m and m.endswith(".loop") for m in imported)


def test_empty_data_is_named_not_a_sampler_or_numpy_error():
    """Issue 25, section 5: fit said "RandomSampler: num_samples must be a positive integer",
    evaluate returned {"loss": 0.0, "accuracy": 0.0}, predict leaked NumPy's "need at least one
    array to concatenate"."""
    model = nn.Sequential(nn.Linear(3, 2))
    some = (np.zeros((4, 3), np.float32), np.zeros(4, np.int64))
    none = (np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    sgd = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(data.DataError, match="fit: the training data is empty"):
        fit(model, nn.CrossEntropyLoss(), sgd, none, progress=False)
    with pytest.raises(data.DataError, match="fit: the validation data is empty"):
        fit(model, nn.CrossEntropyLoss(), sgd, some, validation_data=none, progress=False)
    with pytest.raises(data.DataError, match="evaluate: the data is empty"):
        evaluate(model, nn.CrossEntropyLoss(), none)
    with pytest.raises(data.DataError, match=r"predict: the input of shape \(0, 3\) holds no"):
        predict(model, none[0])
    assert evaluate(model, nn.CrossEntropyLoss(), some)["loss"] > 0


def test_evaluate_sums_locally_and_merges_once():
    """The sums evaluate reduces once (Chan's merge of the regression moments) give the
    numbers of the whole set, however it is split: two halves merged equal one pass."""
    from chainrule.train.loop import EpochMetrics

    rng = np.random.default_rng(0)
    output, target = rng.normal(size=(50, 1)), 1e6 + rng.normal(size=(50, 1))
    whole = EpochMetrics(0.0, True, target_std=2.0)
    whole.update(1.0, output, target)
    halves = [EpochMetrics(0.0, True, target_std=2.0) for _ in range(2)]
    halves[0].update(1.0, output[:20], target[:20])
    halves[1].update(1.0, output[20:], target[20:])
    rows = [[h.loss_sum, h.correct, h.count, *h.regression.moments()] for h in halves]
    merged = EpochMetrics(0.0, True, target_std=2.0)
    merged.regression.merge(np.asarray(rows)[:, 3:])
    merged.loss_sum, merged.count = sum(r[0] for r in rows), sum(r[2] for r in rows)
    expected, found = whole.result(), merged.result()
    assert found.keys() == expected.keys()
    for key in expected:
        assert found[key] == pytest.approx(expected[key], rel=1e-9), key


def _val_history(val_losses):
    from chainrule.train.loop import History

    return History([{"loss": 1.0, "val_loss": v} for v in val_losses])


def test_history_overfitting_needs_a_lasting_rise_of_the_validation_loss():
    falling = [2.0 - 0.05 * i for i in range(20)]
    assert _val_history(falling).overfitting() is None
    risen = [2.0 - 0.1 * i for i in range(8)] + [1.3 + 0.1 * i for i in range(1, 13)]
    found = _val_history(risen).overfitting()
    assert found == {"best_epoch": 8, "best": pytest.approx(1.3), "last": pytest.approx(2.5)}
    # one bad last epoch is noise, not a trend: the mean of the last three stays near the lowest
    assert _val_history([*falling[:-1], falling[-2] * 1.2]).overfitting() is None
    # lowest in the last quarter of the epochs: too late to call it a rise
    assert _val_history([*falling[:17], 1.5, 1.6, 1.7]).overfitting() is None
    # a rise below the absolute floor (0.01) on a tiny loss
    assert _val_history([0.001] * 5 + [0.005] * 15).overfitting() is None
    # no validation loss (or too few epochs): nothing to say
    assert _val_history([None] * 20).overfitting() is None
    assert _val_history([1.0, 2.0, 3.0]).overfitting() is None
