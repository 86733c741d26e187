"""chainrule's scikit-learn estimators against scikit-learn's own MLPs: accuracy or R^2, and time.

``python -m benchmarks.estimators`` (or ``python -m benchmarks --estimators``) fits
``chainrule.sklearn.MLPClassifier`` / ``MLPRegressor`` and ``sklearn.neural_network``'s with the
same parameters on the same float32 data (scikit-learn then computes in float32 too), one after
the other, and prints the scores, the epochs each ran, the seconds and the ratios:

* digits: classify the 8x8 digits; regress each digit's bottom half on its top half;
* MNIST (from ../shared/data/mnist when present): the same with 28x28 digits, for a fixed
  number of epochs.

R^2 is variance-weighted over the output pixels (near-constant border pixels would otherwise
dominate a uniform average). Digits timings are medians of interleaved repetitions; MNIST runs
once per estimator.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np

from .common import machine, mnist, save_results, set_threads


def digits():
    """((x_train, y_train), (x_test, y_test)) of the 8x8 digits in [0, 1], float32."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    return (x_train, y_train), (x_test, y_test)


def halves(x, side: int):
    """Top half of each image (inputs) and bottom half (targets), from flat side x side images."""
    cut = side * side // 2
    return x[:, :cut], x[:, cut:]


def score(estimator, x, y) -> float:
    from sklearn.metrics import r2_score

    if y.ndim == 2:
        return float(r2_score(y, estimator.predict(x), multioutput="variance_weighted"))
    return float(estimator.score(x, y))


def fit_and_score(make, train, test) -> dict:
    """Fit a fresh estimator, timing the fit alone; its test score and epochs."""
    estimator = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short runs have not "converged"
        start = time.perf_counter()
        estimator.fit(*train)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "epochs": estimator.n_iter_, "score": score(estimator, *test)}


def compare(name: str, task: str, params: dict, train, test, repeats: int) -> dict:
    """Both estimators with ``params``, ``repeats`` interleaved rounds; medians."""
    import sklearn.neural_network as theirs

    import chainrule.sklearn as ours

    kind = "MLPClassifier" if task == "accuracy" else "MLPRegressor"
    makers = {
        "chainrule": lambda: getattr(ours, kind)(**params),
        "sklearn": lambda: getattr(theirs, kind)(**params),
    }
    runs = {fw: [] for fw in makers}
    for _ in range(repeats):
        for fw, make in makers.items():
            runs[fw].append(fit_and_score(make, train, test))
    row = {"case": name, "metric": task, "params": {k: str(v) for k, v in params.items()}}
    for fw, results in runs.items():
        row[fw] = {
            "seconds": statistics.median(r["seconds"] for r in results),
            "epochs": results[0]["epochs"],
            "score": statistics.median(r["score"] for r in results),
        }
        row[fw]["seconds_per_epoch"] = row[fw]["seconds"] / row[fw]["epochs"]
    row["speedup_per_epoch"] = (
        row["sklearn"]["seconds_per_epoch"] / row["chainrule"]["seconds_per_epoch"]
    )
    return row


def cases(quick: bool) -> list[dict]:
    """The comparisons: name, metric, estimator parameters, train and test data, repetitions."""
    common = {"random_state": 0, "learning_rate_init": 1e-3, "alpha": 1e-4}
    (x, y), (xt, yt) = digits()
    found = [
        {
            "name": "digits, classify",
            "metric": "accuracy",
            "params": {**common, "hidden_layer_sizes": (128, 64)},
            "data": ((x, y), (xt, yt)),
            "repeats": 3,
        },
        {
            "name": "digits, bottom half from top half",
            "metric": "R^2",
            "params": {**common, "hidden_layer_sizes": (128,)},
            "data": (halves(x, 8), halves(xt, 8)),
            "repeats": 3,
        },
    ]
    if quick:
        return found
    (x, y), (xt, yt), source = mnist()
    ten_epochs = {"max_iter": 10, "n_iter_no_change": 10}  # no convergence stop before 10
    return found + [
        {
            "name": f"{source}, classify (10 epochs)",
            "metric": "accuracy",
            "params": {**common, **ten_epochs, "hidden_layer_sizes": (256, 128)},
            "data": ((x, y), (xt, yt)),
            "repeats": 1,
        },
        {
            "name": f"{source}, bottom half from top half (10 epochs)",
            "metric": "R^2",
            "params": {**common, **ten_epochs, "hidden_layer_sizes": (256,)},
            "data": (halves(x, 28), halves(xt, 28)),
            "repeats": 1,
        },
    ]


def run(quick: bool = False, progress=print) -> list[dict]:
    rows = []
    for case in cases(quick):
        progress(f"  {case['name']} ...")
        rows.append(
            compare(case["name"], case["metric"], case["params"], *case["data"], case["repeats"])
        )
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| chainrule.sklearn vs sklearn.neural_network | metric | chainrule | scikit-learn "
        "| epochs (ours / theirs) | seconds (ours / theirs) | speed per epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ours, theirs = r["chainrule"], r["sklearn"]
        lines.append(
            f"| {r['case']} | {r['metric']} | {ours['score']:.4f} | {theirs['score']:.4f} "
            f"| {ours['epochs']} / {theirs['epochs']} "
            f"| {ours['seconds']:.2f} / {theirs['seconds']:.2f} | {r['speedup_per_epoch']:.2f}x |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimators", description=__doc__)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="the digits only")
    args = parser.parse_args()
    threads = set_threads(args.threads, torch=False)
    started = time.time()
    rows = run(args.quick)
    text = "\n".join(
        [
            f"Machine: {machine()}",
            f"Threads: {args.threads}; BLAS: {'; '.join(threads['blas'])}",
            "Same parameters and float32 data for both; batch 200 ('auto'), Adam; "
            "speed per epoch = scikit-learn's seconds per epoch / chainrule's",
            "",
            *table(rows),
            f"\n(benchmark took {time.time() - started:.0f} s)",
        ]
    )
    print(text)
    save_results("estimators", text, rows)


if __name__ == "__main__":
    main()
