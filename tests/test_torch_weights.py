"""PyTorch weights, both ways, through safetensors files: same names, same layouts, same outputs."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")


def mlp(lib):
    n = lib.nn
    return n.Sequential(n.Flatten(), n.Linear(64, 32), n.ReLU(), n.Linear(32, 10))


def lenet(lib):
    n = lib.nn
    return n.Sequential(
        n.Conv2d(1, 6, 5, padding=2), n.ReLU(), n.MaxPool2d(2),
        n.Conv2d(6, 16, 5), n.ReLU(), n.MaxPool2d(2), n.Flatten(),
        n.Linear(400, 120), n.ReLU(), n.Linear(120, 84), n.ReLU(), n.Linear(84, 10),
    )  # fmt: skip


def batch_norm_net(lib):
    n = lib.nn
    return n.Sequential(
        n.Conv2d(1, 4, 3, padding=1), n.BatchNorm2d(4), n.ReLU(), n.AvgPool2d(2), n.Flatten(),
        n.Linear(4 * 14 * 14, 16), n.BatchNorm1d(16), n.ReLU(), n.Linear(16, 3),
    )  # fmt: skip


NETWORKS = {"MLP": (mlp, (5, 1, 8, 8)), "LeNet": (lenet, (5, 1, 28, 28)),
            "BatchNorm": (batch_norm_net, (5, 1, 28, 28))}  # fmt: skip


def trained_a_little(model, shape):
    """Give the batch-norm statistics values other than 0 and 1 with a few training steps."""
    opt = cr.optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(1)
    for _ in range(3):
        opt.zero_grad()
        (model(cr.tensor(rng.standard_normal(shape).astype(np.float32))) ** 2).mean().backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("name", NETWORKS)
def test_chainrule_weights_load_into_pytorch(name, tmp_path):
    build, shape = NETWORKS[name]
    cr.manual_seed(0)
    ours = trained_a_little(build(cr), shape)
    path = cr.save(ours.state_dict(), tmp_path / "weights.safetensors")
    state = safetensors_torch.load_file(str(path))
    theirs = build(torch).eval()
    assert set(state) == set(theirs.state_dict())
    theirs.load_state_dict(state)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    with cr.no_grad():
        np.testing.assert_allclose(ours(cr.tensor(x)).numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NETWORKS)
def test_pytorch_weights_load_into_chainrule(name, tmp_path):
    build, shape = NETWORKS[name]
    torch.manual_seed(0)
    theirs = build(torch)
    if name == "BatchNorm":  # non-trivial running statistics
        theirs.train()
        with torch.no_grad():
            theirs(torch.randn(*shape) * 3 + 1)
    theirs.eval()
    path = tmp_path / "from_torch.safetensors"
    safetensors_torch.save_file(theirs.state_dict(), str(path))
    ours = build(cr).eval()
    ours.load_state_dict(cr.load(path))
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    with cr.no_grad():
        np.testing.assert_allclose(ours(cr.tensor(x)).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_a_state_dict_round_trips_through_cr_save_and_cr_load(tmp_path):
    cr.manual_seed(0)
    model = batch_norm_net(cr)
    trained_a_little(model, (5, 1, 28, 28))
    cr.save(model.state_dict(), tmp_path / "model.pth")
    other = batch_norm_net(cr)
    other.load_state_dict(cr.load(tmp_path / "model.pth"))
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    cr.save(model, tmp_path / "whole")  # a whole model still saves as model + architecture
    assert isinstance(cr.load(tmp_path / "whole"), nn.Sequential)


def test_a_pytorch_pickle_is_refused_with_the_way_to_convert_it(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(cr.io.ChainruleFileError, match="PyTorch pickle.*safetensors"):
        cr.load(path)
