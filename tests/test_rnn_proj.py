"""LSTMs with projections (``nn.LSTM(proj_size=P)``) against PyTorch, from the same weights.

As in test_rnn.py: each layer built in both frameworks, the weights copied through state dicts,
outputs, h_n, c_n and the gradients of the input, the initial states and every weight (W_hr
included) compared, float64 to 1e-10 and float32 to 1e-5; the op gradchecked with and without
masks, every c_t included; the settings PyTorch refuses refused in one line; save and load.
"""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import describe
from chainrule.nn.utils import rnn as rnn_utils
from chainrule.ops.rnn import ProjectedLSTMSequence
from test_rnn import assert_same_run, pair, with_state

torch = pytest.importorskip("torch", reason="the recurrent layers are checked against PyTorch")
trnn = torch.nn.utils.rnn

INPUTS, HIDDEN, PROJ = 3, 5, 2
OPTIONS = {
    "one layer": {},
    "two layers": {"num_layers": 2},
    "bidirectional": {"bidirectional": True},
    "batch_first": {"batch_first": True},
    "two bidirectional layers without bias": {
        "num_layers": 2,
        "bidirectional": True,
        "bias": False,
    },
}


def projected(dtype: str = "float64", from_torch: bool = False, **options):
    """The same projected LSTM (3 -> 5, projected to 2) in both frameworks."""
    return pair(
        lambda **o: nn.LSTM(INPUTS, HIDDEN, proj_size=PROJ, **o),
        lambda **o: torch.nn.LSTM(INPUTS, HIDDEN, proj_size=PROJ, **o),
        dtype,
        from_torch,
        **options,
    )


def initial_states(rng, layers: int, batch: tuple = (2,)) -> list:
    """h_0 (layers, *batch, P) and c_0 (layers, *batch, H)."""
    return [rng.standard_normal((layers, *batch, width)) for width in (PROJ, HIDDEN)]


@pytest.mark.parametrize("option", OPTIONS)
def test_projected_lstm_matches_pytorch(option):
    options = OPTIONS[option]
    ours, theirs = projected(**options)
    shape = (2, 4, INPUTS) if options.get("batch_first") else (4, 2, INPUTS)
    assert_same_run(ours, theirs, [np.random.default_rng(0).standard_normal(shape)], "float64")


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_projected_lstm_in_float32():
    ours, theirs = projected("float32", num_layers=2, bidirectional=True)
    x = np.random.default_rng(1).standard_normal((4, 2, INPUTS)).astype(np.float32)
    assert_same_run(ours, theirs, [x], "float32")


def test_given_initial_states_and_weights_from_pytorch():
    options = {"num_layers": 2, "bidirectional": True, "batch_first": True}
    ours, theirs = projected(from_torch=True, **options)
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((2, 4, INPUTS)), *initial_states(rng, 4)]
    assert_same_run(ours, theirs, inputs, "float64", with_state(nn.LSTM))


def test_unbatched_input_with_and_without_initial_state():
    ours, theirs = projected(num_layers=2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, INPUTS))
    assert_same_run(ours, theirs, [x], "float64")
    for layer in (ours, theirs):
        layer.zero_grad()
    inputs = [x, *initial_states(rng, 2, batch=())]  # h_0 (2, P), c_0 (2, H)
    assert_same_run(ours, theirs, inputs, "float64", with_state(nn.LSTM))


@pytest.mark.parametrize("lengths", [[3, 5, 1], [5, 4, 2]], ids=["unsorted", "sorted"])
def test_packed_sequences_of_unequal_lengths(lengths):
    ours, theirs = projected(num_layers=2, bidirectional=True)
    rng = np.random.default_rng(4)
    in_order = lengths == sorted(lengths, reverse=True)

    def with_packed_input(xs):
        library = rnn_utils if isinstance(xs[0], cr.Tensor) else trnn
        packed = library.pack_padded_sequence(xs[0], lengths, enforce_sorted=in_order)
        return packed, tuple(xs[1:])

    inputs = [rng.standard_normal((5, 3, INPUTS)), *initial_states(rng, 4, batch=(3,))]
    assert_same_run(ours, theirs, inputs, "float64", with_packed_input)


def test_dropout_between_layers_in_training_only():
    ours, theirs = projected(num_layers=2, dropout=0.5)
    x = cr.tensor(np.random.default_rng(5).standard_normal((4, 2, INPUTS)))
    with cr.no_grad():
        first, second = ours(x)[0].numpy(), ours(x)[0].numpy()
    assert first.shape == (4, 2, PROJ) and not np.allclose(first, second)
    ours.eval(), theirs.eval()
    with cr.no_grad():
        evaluated = ours(x)[0].numpy()
    expected = theirs(torch.tensor(x.numpy()))[0].detach().numpy()
    np.testing.assert_allclose(evaluated, expected, atol=1e-12)


def test_state_dict_and_all_weights_as_pytorch_has_them():
    """torch -> chainrule -> torch gives the same tensors back, under PyTorch's names and shapes,
    and all_weights lists W_hr last in each layer and direction, as PyTorch's does."""
    for bias in (True, False):
        ours, theirs = projected(from_torch=True, num_layers=2, bidirectional=True, bias=bias)
        back = torch.nn.LSTM(
            INPUTS, HIDDEN, 2, bias=bias, bidirectional=True, proj_size=PROJ, dtype=torch.float64
        )
        back.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
        for (name, p), (their_name, q) in zip(
            back.state_dict().items(), theirs.state_dict().items()
        ):
            assert name == their_name and torch.equal(p, q)
        assert [[tuple(w.shape) for w in layer] for layer in ours.all_weights] == [
            [tuple(w.shape) for w in layer] for layer in theirs.all_weights
        ]
        assert ours.all_weights[3][-1] is ours.weight_hr_l1_reverse
        assert repr(ours) == repr(theirs)


# -- the op, gradchecked --------------------------------------------------------------------------


@pytest.mark.parametrize("masked", [False, True], ids=["whole", "masked"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_op_passes_gradcheck(seed, reverse, masked):
    """Random small sizes; the whole output, so every c_t's gradient is checked too."""
    rng = np.random.default_rng(seed)
    steps, batch, inputs = (int(n) for n in rng.integers(1, 4, 3))
    size = int(rng.integers(2, 5))
    width = int(rng.integers(1, size))
    mask = None
    if masked:
        lengths = rng.integers(1, steps + 1, batch)
        mask = (np.arange(steps)[:, None] < lengths[None, :])[:, :, None]
    shapes = [(steps, batch, inputs), (batch, width), (batch, size), (4 * size, inputs)]
    shapes += [(4 * size, width), (4 * size,), (4 * size,), (width, size)]
    tensors = [cr.tensor(rng.standard_normal(s) * 0.7, requires_grad=True) for s in shapes]

    def op(*t):
        return ProjectedLSTMSequence.apply(*t, reverse=reverse, mask=mask)

    assert cr.gradcheck(op, *tensors).passed


def test_the_op_without_biases_gives_none_for_them():
    rng = np.random.default_rng(6)
    shapes = [(3, 2, 2), (2, 1), (2, 3), (12, 2), (12, 1)]
    x, h0, c0, w_ih, w_hh = (cr.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes)
    w_hr = cr.tensor(rng.standard_normal((1, 3)), requires_grad=True)
    report = cr.gradcheck(
        lambda *t: ProjectedLSTMSequence.apply(*t[:5], None, None, t[5]),
        x,
        h0,
        c0,
        w_ih,
        w_hh,
        w_hr,
    )
    assert report.passed


# -- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: nn.LSTM(3, 4, proj_size=4), r"LSTM\(3, 4\): proj_size must be 0 .* smaller than "),
        (lambda: nn.LSTM(3, 4, proj_size=9), "smaller than hidden_size 4, got 9"),
        (lambda: nn.LSTM(3, 4, proj_size=-1), "got -1"),
        (lambda: nn.LSTM(3, 4, proj_size=1.5), "whole number"),
        (lambda: nn.LSTM(3, 4, proj_size=True), "whole number"),
        (lambda: nn.GRU(3, 4, proj_size=2), r"GRU\(3, 4\): proj_size is only supported for LSTM"),
        (lambda: nn.RNN(3, 4, proj_size=2), r"RNN\(3, 4\): proj_size is only supported for LSTM"),
        (lambda: nn.RNNBase("GRU", 3, 4, proj_size=1), "only supported for LSTM"),
        (
            lambda: nn.LSTM(3, 4, proj_size=2)(cr.randn(5, 2, 3), (cr.zeros(1, 2, 4),) * 2),
            r"h_0 of shape \(1, 2, 4\): expected \(1, 2, 2\)",
        ),
        (
            lambda: nn.LSTM(3, 4, proj_size=2)(cr.randn(5, 2, 3), (cr.zeros(1, 2, 2),) * 2),
            r"c_0 of shape \(1, 2, 2\): expected \(1, 2, 4\)",
        ),
        (
            lambda: nn.LSTM(3, 4, proj_size=2)(cr.randn(5, 3), (cr.zeros(1, 2), cr.zeros(1, 2))),
            r"c_0 of shape \(1, 2\): expected \(1, 4\)",
        ),
    ],
)
def test_bad_projections_and_states_are_refused_with_one_line(call, message):
    with pytest.raises(ValueError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_pytorch_refuses_the_same_settings():
    """Our refusals are PyTorch's (so a program that runs here runs there)."""
    for make in (
        lambda: torch.nn.LSTM(3, 4, proj_size=4),
        lambda: torch.nn.LSTM(3, 4, proj_size=-1),
        lambda: torch.nn.GRU(3, 4, proj_size=2),
        lambda: torch.nn.RNN(3, 4, proj_size=2),
    ):
        with pytest.raises(ValueError, match="proj_size"):
            make()


@pytest.mark.parametrize(
    "args, message",
    [
        ({"proj_size": 4}, "bad arguments.*proj_size must be 0"),
        ({"proj_size": 2.5}, "bad arguments.*proj_size must be 0"),
        ({"proj_size": 1 << 20}, "bad arguments.*proj_size must be 0"),
    ],
)
def test_a_model_file_with_a_bad_projection_is_refused_before_building(args, message):
    entry = {"type": "LSTM", "args": {"input_size": 3, "hidden_size": 4, **args}}
    description = {"format": "chainrule.Sequential", "version": 1, "layers": [entry]}
    with pytest.raises(ValueError, match=message):
        describe.build(description)
    gru = {"type": "GRU", "args": {"input_size": 3, "hidden_size": 4, "proj_size": 2}}
    with pytest.raises(ValueError, match="GRU.*only supported for LSTM"):
        describe.build({**description, "layers": [gru]})


# -- describing, saving, loading --------------------------------------------------------------------


def test_describes_itself_and_round_trips_through_a_file(tmp_path):
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True, proj_size=2).eval()
    config = lstm.config()
    assert config["proj_size"] == 2 and nn.LSTM.from_config(config).config() == config
    shapes = nn.LSTM.state_shapes(config)
    assert shapes == {k: tuple(v.shape) for k, v in lstm.state_dict().items()}
    assert shapes["weight_hr_l1_reverse"] == (2, 5) and shapes["weight_ih_l1"] == (20, 4)
    x = cr.randn(4, 6, 3)
    output, (h, c) = lstm(x)
    assert lstm.output_shape((4, 6, 3)) == ((4, 6, 4), ((4, 4, 2), (4, 4, 5)))
    assert (tuple(output.shape), tuple(h.shape), tuple(c.shape)) == (
        (4, 6, 4),
        (4, 4, 2),
        (4, 4, 5),
    )
    cr.save(lstm, tmp_path / "lstm")  # the module alone, and in a Sequential
    cr.save(nn.Sequential(lstm), tmp_path / "sequential")
    for name in ("lstm", "sequential"):
        loaded = cr.load(tmp_path / name).eval()
        again, (h_again, c_again) = loaded(x)
        for ours, expected in ((again, output), (h_again, h), (c_again, c)):
            np.testing.assert_array_equal(ours.detach().numpy(), expected.detach().numpy())


def test_summary_shows_the_projected_shapes():
    model = nn.Sequential(nn.LSTM(3, 5, proj_size=2, num_layers=2))
    text = nn.summary(model, (4, 6, 3))
    assert "LSTM(3, 5, proj_size=2, num_layers=2)" in text
    assert "((4, 6, 2), ((2, 6, 2), (2, 6, 5)))" in text
    count = sum(math.prod(s) for s in nn.LSTM.state_shapes(model[0].config()).values())
    assert f"{count:,}" in text and count == model.num_parameters()
