"""PyTorch's examples/mnist training script, once per library: one epoch of 60,000 images at
batch 64 (shuffled by each library's DataLoader), then the test set at batch 1000.

The structure follows the example's ``train`` and ``test`` functions line by line; only the
module names differ (see :func:`benchmarks.convnets.library`). The optimizer is the example's
Adadelta (lr 1.0) with StepLR (gamma 0.7) where chainrule has Adadelta, else Adam (lr 1e-3) for
both. Returns the wall time of the whole run and the test accuracy.
"""

from __future__ import annotations

import time

from .convnets import library, mnist_example_net


def run(framework: str, train, test, optimizer_name: str) -> dict:
    lib = library(framework)
    lib.seed(1)
    start = time.perf_counter()
    if framework == "chainrule":
        import chainrule as cr

        def loader(x, y, batch, shuffle):
            return cr.data.DataLoader(
                cr.data.TensorDataset(x, y), batch_size=batch, shuffle=shuffle
            )
    else:
        import torch

        def loader(x, y, batch, shuffle):
            dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
            return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=shuffle)

    train_loader = loader(*train, 64, True)
    test_loader = loader(*test, 1000, False)
    model = mnist_example_net(lib)
    if optimizer_name == "adadelta":
        optimizer = lib.optim.Adadelta(model.parameters(), lr=1.0)
        gamma = 0.7
    else:
        optimizer, gamma = lib.optim.Adam(model.parameters(), lr=1e-3), 1.0
    scheduler = lib.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=gamma)
    F = lib.F

    model.train()  # train(): one epoch
    for data, target in train_loader:
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()

    model.eval()  # test()
    test_loss, correct = 0.0, 0
    with lib.no_grad():
        for data, target in test_loader:
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += int((pred.reshape(-1) == target).sum().item())
    scheduler.step()
    return {
        "seconds": time.perf_counter() - start,
        "test_loss": test_loss / len(test[0]),
        "accuracy": correct / len(test[0]),
    }
