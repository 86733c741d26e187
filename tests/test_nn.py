"""Modules and layers: parameters, state, modes, errors, gradients, and PyTorch agreement."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 6)
        self.blocks = [nn.Linear(6, 6), nn.Linear(6, 6, bias=False)]
        self.heads = {"a": nn.Linear(6, 2), "b": nn.Linear(6, 3)}
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))

    def forward(self, x):
        h = self.encoder(x).relu()
        for block in self.blocks:
            h = block(h).tanh()
        return self.heads["a"](h) * self.scale, self.heads["b"](h)


def test_named_parameters_walk_attributes_lists_and_dicts_in_order():
    names = [name for name, _ in Net().named_parameters()]
    assert names == [  # as PyTorch: a module's own parameters first, then each child's
        "scale",
        "encoder.weight",
        "encoder.bias",
        "blocks.0.weight",
        "blocks.0.bias",
        "blocks.1.weight",
        "heads.a.weight",
        "heads.a.bias",
        "heads.b.weight",
        "heads.b.bias",
    ]
    net = Net()
    assert net.num_parameters() == 4 * 6 + 6 + 36 + 6 + 36 + 12 + 2 + 18 + 3 + 1
    assert len(list(net.children())) == 5 and len(list(net.modules())) == 6


def test_state_dict_round_trip_gives_identical_outputs():
    a, b = Net(), Net()
    x = cr.randn(5, 4)
    b.load_state_dict(a.state_dict())
    for ya, yb in zip(a(x), b(x)):
        np.testing.assert_array_equal(ya.detach().numpy(), yb.detach().numpy())


def test_load_state_dict_errors_name_the_key_and_shapes():
    net = Net()
    state = net.state_dict()
    del state["encoder.bias"]
    with pytest.raises(KeyError, match="encoder.bias"):
        net.load_state_dict(state)
    assert net.load_state_dict(state, strict=False).missing_keys == ["encoder.bias"]
    state = net.state_dict()
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match="extra"):
        net.load_state_dict(state)
    state = net.state_dict()
    state["encoder.weight"] = np.zeros((6, 5))
    with pytest.raises(ValueError, match=r"encoder.weight.*\(6, 5\).*\(6, 4\)"):
        net.load_state_dict(state)


def test_linear_rejects_the_wrong_input_shape_by_name():
    with pytest.raises(ValueError, match=r"Linear\(784 -> 128\) got input of shape \(32, 785\)"):
        nn.Linear(784, 128)(cr.randn(32, 785))


def test_train_eval_and_zero_grad():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    assert model.training and model[1].training
    model.eval()
    assert not model[1].training
    x = cr.randn(4, 3)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model[0](x)))  # dropout off
    model(x).sum().backward()
    assert model[0].weight.grad is not None
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_dropout_is_inverted_and_seeded():
    cr.manual_seed(1)
    x = cr.ones(1000, 100)
    y = nn.functional.dropout(x, p=0.25, training=True).numpy()
    kept = y != 0
    assert 0.72 < kept.mean() < 0.78
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    with pytest.raises(ValueError):
        nn.Dropout(1.0)


@pytest.mark.parametrize("p", [0.01, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(999, 101), (3, 1), (1,)])
def test_dropout_keeps_each_value_with_probability_one_minus_p(p, shape):
    cr.manual_seed(2)
    draws = [
        nn.functional.dropout(cr.ones(*shape), p=p).numpy() for _ in range(200 // shape[0] + 1)
    ]
    kept = np.concatenate([d.reshape(-1) for d in draws]) != 0
    spread = 5 * np.sqrt(p * (1 - p) / kept.size)  # five standard deviations of the fraction
    assert abs(kept.mean() - (1 - p)) < spread + 1 / kept.size
    assert draws[0].shape == shape


def test_repr_and_summary_are_readable():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    assert "(1): Linear(784 -> 128)" in repr(model)
    table = nn.summary(model, (1, 28, 28))
    assert "(1, 128)" in table and "101,770" in table


def test_summary_shows_the_shapes_of_a_tuple_output():
    """An LSTM returns (output, (h, c)); a model may return several tensors: each shape shows."""
    table = nn.summary(nn.LSTM(10, 20, num_layers=2), (5, 3, 10))
    assert "((5, 3, 20), ((2, 3, 20), (2, 3, 20)))" in table and "5,920" in table

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.rnn, self.fc = nn.Embedding(100, 10), nn.GRU(10, 20), nn.Linear(20, 7)

        def forward(self, x):
            output, h = self.rnn(self.emb(x))
            return self.fc(output), h

    table = nn.summary(Tagger(), (5, 3), dtype="int64")
    assert "((5, 3, 20), (1, 3, 20))" in table and "(5, 3, 7)" in table


def test_init_follows_pytorch_formulas():
    cr.manual_seed(0)
    w = nn.Parameter(np.zeros((400, 300), dtype=np.float32))
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    bound = np.sqrt(2) * np.sqrt(3 / 300)
    assert np.abs(np.asarray(w)).max() <= bound and np.abs(np.asarray(w)).max() > 0.99 * bound
    nn.init.xavier_normal_(w)
    assert w.detach().numpy().std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w.detach().numpy().std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    nn.init.xavier_uniform_(w, gain=2.0)
    assert np.abs(w.detach().numpy()).max() <= 2 * np.sqrt(6 / 700)
    layer = nn.Linear(300, 50)
    assert np.abs(layer.weight.detach().numpy()).max() <= 1 / np.sqrt(300)
    assert np.abs(layer.bias.detach().numpy()).max() <= 1 / np.sqrt(300)
    nn.init.zeros_(layer.bias)
    assert not layer.bias.detach().numpy().any()
    cr.manual_seed(5)
    first = nn.Linear(10, 10).weight.detach().numpy().copy()
    cr.manual_seed(5)
    np.testing.assert_array_equal(first, nn.Linear(10, 10).weight.detach().numpy())


def test_check_gradients_prints_a_table_with_dropout(capsys):
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Tanh(), nn.Linear(8, 3))
    x = np.random.default_rng(0).standard_normal((6, 4))
    cr.check_gradients(model, nn.CrossEntropyLoss(), x, np.array([0, 1, 2, 0, 1, 2]))
    out = capsys.readouterr().out
    assert "0.weight" in out and "3.bias" in out and "passed" in out
    assert model[0].weight.dtype == np.float32  # the original is untouched
