"""MLP training speed: chainrule vs PyTorch eager vs scikit-learn, and time to 98% on MNIST.

``python -m benchmarks.mlp --framework chainrule`` runs one framework alone and prints a JSON line
with its speed and peak memory (the parent benchmark runs each in a fresh process for memory).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from .common import (
    chainrule_training_step,
    mnist,
    peak_rss_mib,
    set_threads,
    throughput,
    torch_training_step,
)


def chainrule_mlp(sizes, seed=0):
    import chainrule as cr
    from chainrule import nn

    cr.manual_seed(seed)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def torch_mlp(sizes, like=None):
    import torch

    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    if like is not None:  # same initial weights as the chainrule model
        model.load_state_dict({k: torch.tensor(v) for k, v in like.state_dict().items()})
    return model


def chainrule_step(sizes, x, y, batch, label_smoothing=0.0):
    """A training step function (forward, loss, zero_grad, backward, Adam) and its model."""
    model = chainrule_mlp(sizes)
    return chainrule_training_step(model, x, y, batch, label_smoothing), model


def torch_step(sizes, x, y, batch, label_smoothing=0.0, like=None):
    model = torch_mlp(sizes, like)
    return torch_training_step(model, x, y, batch, label_smoothing), model


def sklearn_samples_per_second(sizes, x, y, batch) -> float:
    """One epoch of scikit-learn's MLPClassifier (float64, Adam, same architecture and batch)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=sizes[1:-1],
        solver="adam",
        batch_size=batch,
        learning_rate_init=1e-3,
        max_iter=1,
        shuffle=False,
        random_state=0,
    )
    x64 = x.astype(np.float64)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x64, y)
    return len(x) / (time.perf_counter() - start)


def time_to_accuracy(framework, train, test, target=0.98, max_epochs=20, batch=128):
    """Training seconds (evaluation excluded) until test accuracy >= target, same recipe for both:
    784-256-128-10, ReLU, Adam 1e-3, batch 128, label smoothing 0.1, shuffled each epoch."""
    x, y = train
    sizes = (784, 256, 128, 10)
    if framework == "chainrule":
        import chainrule as cr

        step, model = chainrule_step(sizes, x, y, batch, label_smoothing=0.1)

        def accuracy():
            with cr.no_grad():
                return float((model(cr.tensor(test[0])).numpy().argmax(1) == test[1]).mean())
    else:
        import torch

        step, model = torch_step(sizes, x, y, batch, label_smoothing=0.1)

        def accuracy():
            with torch.no_grad():
                return float((model(torch.from_numpy(test[0])).argmax(1).numpy() == test[1]).mean())

    seconds, rng = 0.0, np.random.default_rng(0)
    for epoch in range(1, max_epochs + 1):
        order = rng.permutation(len(x))
        x[:], y[:] = x[order], y[order]  # shuffle in place, the same way for both
        start = time.perf_counter()
        for i in range(len(x) // batch):
            step(i)
        seconds += time.perf_counter() - start
        acc = accuracy()
        if acc >= target:
            return {"seconds": seconds, "epochs": epoch, "accuracy": acc}
    return {"seconds": None, "epochs": max_epochs, "accuracy": acc}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=["chainrule", "pytorch", "sklearn"], required=True)
    parser.add_argument("--sizes", default="784,256,128,10")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, help="default: each framework's own default")
    args = parser.parse_args()
    set_threads(args.threads, torch=args.framework == "pytorch")
    sizes = tuple(int(s) for s in args.sizes.split(","))
    (x, y), _, _ = mnist()
    if args.framework == "sklearn":
        rate = sklearn_samples_per_second(sizes, x, y, args.batch)
    else:
        make = chainrule_step if args.framework == "chainrule" else torch_step
        step, _ = make(sizes, x, y, args.batch)
        rate = throughput(step, args.batch, args.steps)
    print(json.dumps({"samples_per_s": rate, "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
