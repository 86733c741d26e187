"""The best-fit line: gradient descent on J(w, b) = mean((w x + b - y)^2) ends where
numpy.linalg.lstsq says, every step follows its optimizer's rule, and the learning-rate presets
do what their names say."""

import numpy as np
import pytest
from PIL import Image

import chainrule as cr
from chainrule.cli import main
from chainrule.lens import fitline

pytest.importorskip("matplotlib", reason="the lens draws with matplotlib (the plot extra)")


def points(seed=0, n=40):
    return cr.data.line(n=n, a=2.0, b=1.0, noise=0.5, seed=seed, x_range=(-1.0, 3.0))


def slopes(x, y, w, b):
    """dJ/dw and dJ/db written out by hand."""
    x, y = x[:, 0].astype(np.float64), y.astype(np.float64)
    residual = w * x + b - y
    return 2 * np.mean(residual * x), 2 * np.mean(residual)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_descent_ends_at_the_least_squares_line(seed):
    x, y = points(seed)
    design = np.hstack([x, np.ones_like(x)]).astype(np.float64)
    (w_best, b_best), *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    path = fitline.fit_line_path(x, y, "gd", "right", steps=200, start=(-1.0, 3.0))
    assert not path["diverged"] and len(path["w"]) == 201
    assert path["w"][-1] == pytest.approx(w_best, abs=1e-4)
    assert path["b"][-1] == pytest.approx(b_best, abs=1e-4)
    assert path["least_squares"] == pytest.approx((w_best, b_best), abs=1e-10)
    assert path["cost"][-1] == pytest.approx(path["least_squares_cost"], rel=1e-8)
    assert abs(path["slope_w"][-1]) < 1e-4 and abs(path["slope_b"][-1]) < 1e-4


def test_each_step_is_w_minus_lr_times_the_slope_from_backpropagation():
    x, y = points()
    path = fitline.fit_line_path(x, y, "gd", 0.05, steps=10, start=(-1.0, 3.0))
    assert (path["w"][0], path["b"][0]) == (-1.0, 3.0)
    for k in range(10):
        slope_w, slope_b = slopes(x, y, path["w"][k], path["b"][k])
        assert path["slope_w"][k] == pytest.approx(slope_w, rel=1e-10)
        assert path["slope_b"][k] == pytest.approx(slope_b, rel=1e-10)
        assert path["w"][k + 1] == pytest.approx(path["w"][k] - 0.05 * slope_w, rel=1e-10)
        assert path["b"][k + 1] == pytest.approx(path["b"][k] - 0.05 * slope_b, rel=1e-10)
        residual = path["w"][k] * x[:, 0] + path["b"][k] - y
        assert path["cost"][k] == pytest.approx(np.mean(residual.astype(np.float64) ** 2))


def test_the_learning_rate_presets_crawl_converge_and_diverge():
    x, y = points()
    low, high = fitline.curvatures(x)
    xs = x[:, 0].astype(np.float64)
    hessian = 2 * np.array([[np.mean(xs * xs), np.mean(xs)], [np.mean(xs), 1.0]])
    np.testing.assert_allclose([low, high], np.linalg.eigvalsh(hessian))
    assert fitline.learning_rate("right", "gd", x) == pytest.approx(1 / high)
    assert fitline.learning_rate("too big", "sgd", x) > 2 / high  # past the stability limit
    small = fitline.fit_line_path(x, y, "gd", "too small", steps=60)
    right = fitline.fit_line_path(x, y, "gd", "right", steps=60)
    big = fitline.fit_line_path(x, y, "gd", "too big", steps=60)
    assert np.all(np.diff(small["cost"]) < 0) and np.all(np.diff(right["cost"]) <= 1e-15)
    assert small["cost"][-1] > 3 * right["least_squares_cost"]  # still crawling
    assert right["cost"][-1] == pytest.approx(right["least_squares_cost"], rel=1e-6)
    assert big["diverged"] and big["cost"][-1] > 1e6 * big["cost"][0]
    assert len(big["cost"]) < 61  # stopped once it blew up
    assert fitline.fit_line_path(x, y, "gd", "too big", steps=10)["diverged"]  # grew, no blow-up
    with pytest.raises(ValueError, match="preset must be one of"):
        fitline.learning_rate("huge", "gd", x)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fitline.fit_line_path(x, y, "lbfgs")
    with pytest.raises(ValueError, match="one x per y"):
        fitline.fit_line_path(np.ones((5, 2)), np.ones(5))


def test_sgd_steps_on_mini_batches_and_adam_on_scaled_slopes():
    x, y = points()
    sgd = fitline.fit_line_path(x, y, "sgd", 0.05, steps=300, batch_size=4, seed=3)
    assert sgd["batch_size"] == 4
    first = cr.backend.new_rng(3).permutation(40)[:4]  # the first mini-batch
    slope_w, slope_b = slopes(x[first], y[first], 0.0, 0.0)
    assert sgd["w"][1] == pytest.approx(-0.05 * slope_w, rel=1e-10)
    assert sgd["b"][1] == pytest.approx(-0.05 * slope_b, rel=1e-10)
    assert np.any(np.diff(sgd["cost"]) > 0)  # noisy: a mini-batch step can raise the full cost
    w_best, b_best = sgd["least_squares"]
    assert abs(sgd["w"][-1] - w_best) < 0.1 and abs(sgd["b"][-1] - b_best) < 0.1

    adam = fitline.fit_line_path(x, y, "adam", "right", steps=300)
    # Adam's first step is lr times the sign of the slope (m / sqrt(v) = g / |g|)
    assert adam["w"][1] == pytest.approx(0.15, rel=1e-6) and adam["b"][1] == pytest.approx(0.15)
    assert abs(adam["w"][-1] - w_best) < 0.05 and abs(adam["b"][-1] - b_best) < 0.05


def valid_image(path, frames=1):
    with Image.open(path) as image:
        assert image.size[0] > 300 and image.size[1] > 150
        assert getattr(image, "n_frames", 1) >= frames
    assert path.stat().st_size < 400_000


def test_fit_line_command_with_a_csv_of_two_columns(tmp_path, capsys):
    csv = tmp_path / "houses.csv"
    x, y = points(n=25)
    csv.write_text("size,price\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in zip(x[:, 0], y)))
    out, gif = tmp_path / "fit.png", tmp_path / "fit.gif"
    argv = ["plot", "fit-line", "--data", str(csv), "--steps", "150", "--out", str(out)]
    assert main(argv + ["--gif", str(gif)]) == 0
    text = capsys.readouterr().out
    assert "25 points from" in text and "x = size, y = price" in text
    table = cr.data.read_csv(csv)
    best = fitline.least_squares(table.features, table.target)
    assert f"least squares (numpy.linalg.lstsq): w {best[0]:.4g}, b {best[1]:.4g}" in text
    valid_image(out)
    valid_image(gif, frames=10)
    assert main(["plot", "fit-line", "--lr", "too-big", "--out", str(out)]) == 0
    assert "steps: each step overshoots the valley further (it diverges)" in capsys.readouterr().out
    sgd = ["plot", "fit-line", "--optimizer", "sgd", "--batch-size", "5", "--out", str(out)]
    assert main(sgd) == 0
    assert "(right), batches of 5:" in capsys.readouterr().out


def test_fit_line_command_refuses_bad_input(tmp_path, capsys):
    wide = tmp_path / "wide.csv"
    wide.write_text("a,b,c\n1,2,3\n4,5,6\n")
    assert main(["plot", "fit-line", "--data", str(wide)]) == 2
    assert "fit-line needs two columns (x, then y), got 3: a, b, c" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot", "fit-line", "--lr", "fast"])
    assert "must be too-small, right, too-big or a positive number" in capsys.readouterr().err
