"""The lens for sequences: the gradient reaching each time step (vanishing for a plain RNN, held
by an LSTM), attention weights per head and layer, and sampling temperature; their commands."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from hostile import refused, succeeds

pytest.importorskip("matplotlib", reason="the lens draws with matplotlib (the plot extra)")

from chainrule.lens import text, through_time  # noqa: E402


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_the_unrolled_cells_compute_what_the_layer_computes(model):
    """Step by step with the cell sharing the layer's weights: the same hidden states, and the
    same gradient for the input and the weights as through the layer's one op."""
    layer_class, cell_class = through_time.LAYERS[model]
    cr.manual_seed(1)
    layer = layer_class(3, 5, batch_first=True)
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float32)
    x_layer, x_cells = cr.tensor(x, requires_grad=True), cr.tensor(x, requires_grad=True)
    out, _ = layer(x_layer)
    out.sum().backward()
    by_layer = {name: p.grad.numpy().copy() for name, p in layer.named_parameters()}
    layer.zero_grad()
    hs = through_time.unrolled(layer, cell_class, x_cells)
    by_cells = cr.stack(hs, dim=1)
    np.testing.assert_allclose(
        by_cells.detach().numpy(), out.detach().numpy(), rtol=1e-5, atol=1e-6
    )
    by_cells.sum().backward()
    np.testing.assert_allclose(x_cells.grad.numpy(), x_layer.grad.numpy(), rtol=1e-4, atol=1e-6)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), by_layer[name], rtol=1e-4, atol=1e-6)


def test_each_steps_gradient_is_the_next_ones_times_the_local_jacobian():
    """For a tanh RNN: dL/dh_t = (dL/dh_(t+1) * (1 - h_(t+1)^2)) W_hh, one factor per step back,
    from the gradients retain_grad kept."""
    cr.manual_seed(0)
    layer = nn.RNN(1, 8, batch_first=True)
    x, y = through_time.first_sign_task(steps=12, sequences=4, seed=0)
    hs = through_time.unrolled(layer, nn.RNNCell, cr.tensor(x))
    head = nn.Linear(8, 2)
    nn.CrossEntropyLoss()(head(hs[-1]), cr.tensor(y)).backward()
    w_hh = layer.weight_hh_l0.detach().numpy()
    for t in range(len(hs) - 1):
        h_next, grad_next = hs[t + 1].detach().numpy(), hs[t + 1].grad.numpy()
        expected = (grad_next * (1 - h_next**2)) @ w_hh
        np.testing.assert_allclose(hs[t].grad.numpy(), expected, rtol=1e-4, atol=1e-12)


def test_the_gradient_vanishes_through_a_plain_rnn_and_an_lstm_holds_it():
    """The same seed, the same task: at step 1 of 50 the RNN's gradient is far smaller than
    the LSTM's; the LSTM holds more the nearer its forget gate is to 1."""
    rnn = through_time.gradient_through_time("rnn", steps=50, seed=0)
    lstm = through_time.gradient_through_time("lstm", steps=50, seed=0)
    pytorch_start = through_time.gradient_through_time("lstm", steps=50, forget_bias=0, seed=0)
    remembering = through_time.gradient_through_time("lstm", steps=50, forget_bias=3, seed=0)
    assert rnn.grad_norms[0] < 1e-6 * lstm.grad_norms[0]
    assert rnn.grad_norms[0] < 1e-10 * rnn.grad_norms[-1]  # vanished
    assert lstm.grad_norms[-1] / lstm.grad_norms[0] < 1e6
    assert pytorch_start.grad_norms[0] < lstm.grad_norms[0] < remembering.grad_norms[0]
    assert remembering.grad_norms[-1] / remembering.grad_norms[0] < 100  # held
    assert rnn.grad_norms[0] < pytorch_start.grad_norms[0]
    assert "LSTM, forget-gate bias +1" in through_time.describe([rnn, lstm])


def test_attention_weights_are_recorded_per_layer_and_head_without_changing_the_output():
    cr.manual_seed(0)
    vocabulary = text.Vocabulary(text.demo_text())
    model = text.CharTransformer(len(vocabulary), num_layers=3, nhead=4)
    model.eval()
    sample = "emma.liam"
    indices = cr.tensor(np.array([vocabulary.encode(sample)]))
    plain = model(indices).detach().numpy()
    with text.recording_attention(model) as found:
        recorded = model(indices).detach().numpy()
    np.testing.assert_allclose(recorded, plain, rtol=1e-5, atol=1e-6)
    assert all("forward" not in vars(m) for m in model.modules())  # put back
    attention = text.attention_of(model, vocabulary.encode, sample)
    assert len(found) == len(attention.weights) == 3
    for heads in attention.weights:
        assert heads.shape == (4, len(sample), len(sample))
        np.testing.assert_allclose(heads.sum(axis=-1), 1.0, rtol=1e-5)
        assert np.all(np.triu(heads, k=1) == 0)  # causal: nothing from later characters
    assert "layer 3 head 4: the last 'm' looks at" in text.describe_attention(attention)
    attend = nn.MultiheadAttention(8, 2)
    q = cr.randn(5, 8)
    with text.recording_attention(attend) as found:  # need_weights=False given positionally
        assert attend(q, q, q, None, False)[1] is None
    assert found[0].shape == (2, 5, 5)
    with pytest.raises(ValueError, match="no MultiheadAttention"):
        text.attention_of(nn.Embedding(30, 4), vocabulary.encode, sample)


def test_temperature_divides_the_logits_before_the_softmax():
    cr.manual_seed(0)
    vocabulary = text.Vocabulary(text.demo_text())
    model = text.CharTransformer(len(vocabulary))
    result = text.next_character(
        model, vocabulary.encode, vocabulary.chars, "ava", temperatures=(0.5, 1.0, 2.0)
    )
    entropies = []
    for t, p in result.probabilities.items():
        z = result.logits / t
        expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-7)
        assert p.argmax() == result.logits.argmax()
        entropies.append(-(p * np.log(p)).sum())
    assert entropies[0] < entropies[1] < entropies[2]  # colder is sharper
    with pytest.raises(ValueError, match="never saw: '!' 'A'"):
        vocabulary.encode("Ava!")


def test_the_commands_print_their_numbers(capsys, tmp_path):
    out = succeeds(capsys, ["explain", "through-time", "--steps", "8", "--out", tmp_path / "t.png"])
    assert "RNN (tanh)" in out and "step 1 gets" in out and (tmp_path / "t.png").exists()
    out = succeeds(
        capsys,
        [
            "explain",
            "sampling",
            "a",
            "--train-steps",
            "2",
            "--temperature",
            "1,3",
            "--out",
            tmp_path / "s.png",
        ],
    )
    assert "after 'a', the next character:" in out and "T = 3:" in out
    assert "trained 2 steps" in out


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["explain", "attention", "Emma"], ["TEXT", "'E'"]),
        (["explain", "sampling", "x" * 17], ["TEXT", "1 to 16 characters, got 17"]),
        (["explain", "sampling", ""], ["TEXT", "got 0"]),
        (["explain", "through-time", "--steps", "501"], ["--steps 501", "1 to 500"]),
    ],
)
def test_what_the_commands_cannot_show_is_refused_in_one_line(capsys, argv, fragments):
    refused(capsys, argv, *fragments, seconds=10)  # before any training


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "through-time", "--model", "rnn,transformer"],
        ["explain", "through-time", "--forget-bias", "nan"],
        ["explain", "sampling", "--temperature", "0"],
        ["explain", "sampling", "--temperature", "1,2,3,4,5"],
    ],
)
def test_bad_settings_are_refused_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as stop:
        cr.cli.main(argv)
    assert stop.value.code == 2
    assert "error: argument" in capsys.readouterr().err


TINY_RUN = ["--hidden", "16", "--sequence-length", "8", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    """A tiny Transformer and a tiny GRU trained one epoch on the built-in names."""
    folder = tmp_path_factory.mktemp("text-runs")
    for kind in ("transformer", "gru"):
        argv = ["train", "--task", "text", "--model", kind, *TINY_RUN, "--out", folder / kind]
        assert cr.cli.main([str(a) for a in argv]) == 0
    return folder


def test_attention_and_sampling_of_a_trained_text_run(capsys, tmp_path, text_runs):
    run = text_runs / "transformer"
    out = succeeds(capsys, ["explain", "attention", run, "emma", "--out", tmp_path / "a.png"])
    model, vocabulary = cr.runs.load_text_model(run)
    expected = text.attention_of(model, text.Vocabulary(vocabulary, numbered=True).encode, "\nemma")
    assert len(expected.weights) == 1 and len(expected.weights[0]) == 4  # 1 layer, 4 heads
    for h, weights in enumerate(expected.weights[0]):  # the run's own numbers are printed
        assert f"layer 1 head {h + 1}: the last 'a' looks at" in out
        assert f"({weights[-1].max():.2f})" in out
    assert (tmp_path / "a.png").exists() and "trained" not in out  # nothing trained here
    out = succeeds(
        capsys, ["explain", "sampling", text_runs / "gru", "em", "--out", tmp_path / "s.png"]
    )
    assert "after '\\nem', the next character:" in out


@pytest.mark.parametrize(
    "words, fragments",
    [
        (["gru", "emma"], ["gru model has no attention", "--model transformer"]),
        (["transformer", "Emma"], ["TEXT", "'E'"]),
        (["transformer", "emma", "more"], ["[RUN] TEXT", "3 words"]),
        (["transformer", "e" * 8], ["TEXT", "1 to 8 characters, got 9"]),
    ],
)
def test_what_a_text_run_cannot_show_is_refused_in_one_line(capsys, text_runs, words, fragments):
    argv = [
        "explain",
        "attention",
        *(str(text_runs / w) if i == 0 else w for i, w in enumerate(words)),
    ]
    refused(capsys, argv, *fragments, seconds=10)
