"""Recurrent layers and sequence utilities against PyTorch, from the same weights.

Every layer is built in both frameworks, the weights copied through state dicts (ours into
PyTorch's and PyTorch's into ours), and outputs, final states and the gradients of the input,
the initial states and every weight compared: float64 to 1e-10, float32 to 1e-5. The ops
themselves are gradchecked here with masks (packed sequences) and in tests/op_table.py without.
LSTMs with projections (proj_size) are checked the same way in test_rnn_proj.py.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import describe
from chainrule.nn.utils import rnn as rnn_utils
from chainrule.ops.rnn import ElmanSequence, GRUSequence, LSTMSequence

torch = pytest.importorskip("torch", reason="the recurrent layers are checked against PyTorch")
trnn = torch.nn.utils.rnn

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
LAYERS = {
    "RNN": (nn.RNN, torch.nn.RNN),
    "LSTM": (nn.LSTM, torch.nn.LSTM),
    "GRU": (nn.GRU, torch.nn.GRU),
}
CELLS = {
    "RNNCell": (nn.RNNCell, torch.nn.RNNCell),
    "LSTMCell": (nn.LSTMCell, torch.nn.LSTMCell),
    "GRUCell": (nn.GRUCell, torch.nn.GRUCell),
}
OPTIONS = {
    "plain": {},
    "batch_first": {"batch_first": True},
    "bidirectional": {"bidirectional": True},
    "two layers": {"num_layers": 2},
    "two bidirectional layers without bias": {
        "num_layers": 2,
        "bidirectional": True,
        "bias": False,
    },
}


def flat(output) -> list:
    """The tensors of a nested (output, (h_n, c_n)) structure, in order (a packed sequence's
    data)."""
    if isinstance(output, (rnn_utils.PackedSequence, trnn.PackedSequence)):
        return [output.data]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in flat(item)]
    return [output]


def pair(make, make_torch, dtype: str, from_torch: bool = False, **options):
    """The same layer in both frameworks, weights copied through a state dict either way."""
    ours = make(dtype=dtype, **options)
    theirs = make_torch(dtype=getattr(torch, dtype), **options)
    if from_torch:
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    else:
        theirs.load_state_dict(
            {k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()}
        )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return ours, theirs


def assert_same_run(ours, theirs, inputs: list, dtype: str, wrap=lambda xs: xs, tolerance=None):
    """Run both on ``inputs`` (arrays; None passes as None), compare every output, then backward
    a random weighting of every output and compare the gradients of the inputs and weights."""
    rtol = tolerance or TOLERANCE[dtype]
    our_inputs = [None if a is None else cr.tensor(a, requires_grad=True) for a in inputs]
    their_inputs = [None if a is None else torch.tensor(a, requires_grad=True) for a in inputs]
    our_out, their_out = ours(*wrap(our_inputs)), theirs(*wrap(their_inputs))
    our_flat, their_flat = flat(our_out), flat(their_out)
    assert len(our_flat) == len(their_flat)
    for a, b in zip(our_flat, their_flat):
        assert tuple(a.shape) == tuple(b.shape) and a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=rtol)
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(tuple(t.shape)).astype(dtype) for t in their_flat]
    sum((t * cr.tensor(w)).sum() for t, w in zip(our_flat, weights)).backward()
    sum((t * torch.tensor(w)).sum() for t, w in zip(their_flat, weights)).backward()
    for a, b in zip(our_inputs, their_inputs):
        if a is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=rtol)
    for (name, p), (their_name, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == their_name
        np.testing.assert_allclose(
            p.grad.numpy(), q.grad.numpy(), rtol=rtol, atol=rtol, err_msg=name
        )


def states(make, rng, dtype, shape):
    h = rng.standard_normal(shape).astype(dtype)
    return (h, rng.standard_normal(shape).astype(dtype)) if make is nn.LSTM else (h,)


def with_state(make):
    """Inputs [x, h0] or [x, h0, c0] as the layer takes them: (x, h0) or (x, (h0, c0))."""
    return (lambda xs: (xs[0], tuple(xs[1:]))) if make in (nn.LSTM, torch.nn.LSTM) else None


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("kind", LAYERS)
def test_layer_matches_pytorch(kind, option, dtype):
    make, make_torch = LAYERS[kind]
    options = OPTIONS[option]
    ours, theirs = pair(
        lambda **o: make(4, 3, **o), lambda **o: make_torch(4, 3, **o), dtype, **options
    )
    rng = np.random.default_rng(0)
    shape = (2, 5, 4) if options.get("batch_first") else (5, 2, 4)
    assert_same_run(ours, theirs, [rng.standard_normal(shape).astype(dtype)], dtype)


@pytest.mark.parametrize("kind", LAYERS)
def test_initial_states_and_weights_from_pytorch(kind):
    make, make_torch = LAYERS[kind]
    options = {"num_layers": 2, "bidirectional": True, "batch_first": True}
    ours, theirs = pair(
        lambda **o: make(3, 4, **o), lambda **o: make_torch(3, 4, **o), "float64", True, **options
    )
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6, 3))
    wrap = with_state(make) or (lambda xs: xs)
    assert_same_run(ours, theirs, [x, *states(make, rng, "float64", (4, 3, 4))], "float64", wrap)


def test_relu_rnn_and_unbatched_input():
    ours, theirs = pair(
        lambda **o: nn.RNN(3, 5, nonlinearity="relu", **o),
        lambda **o: torch.nn.RNN(3, 5, nonlinearity="relu", **o),
        "float64",
        num_layers=2,
    )
    rng = np.random.default_rng(3)
    assert_same_run(ours, theirs, [rng.standard_normal((6, 2, 3))], "float64")
    for layer in (ours, theirs):
        layer.zero_grad()
    assert_same_run(
        ours, theirs, [rng.standard_normal((6, 3)), rng.standard_normal((2, 5))], "float64"
    )


def test_unbatched_lstm_with_initial_state():
    ours, theirs = pair(
        lambda **o: nn.LSTM(3, 2, **o), lambda **o: torch.nn.LSTM(3, 2, **o), "float64"
    )
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal((4, 3)), rng.standard_normal((1, 2)), rng.standard_normal((1, 2))]
    assert_same_run(ours, theirs, inputs, "float64", with_state(nn.LSTM))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", CELLS)
def test_cell_matches_pytorch(kind, dtype):
    make, make_torch = CELLS[kind]
    ours, theirs = pair(lambda **o: make(4, 3, **o), lambda **o: make_torch(4, 3, **o), dtype)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4)).astype(dtype)
    assert_same_run(ours, theirs, [x], dtype)
    states = [rng.standard_normal((2, 3)).astype(dtype) for _ in range(1 + (make is nn.LSTMCell))]
    wrap = (lambda xs: (xs[0], tuple(xs[1:]))) if make is nn.LSTMCell else (lambda xs: xs)
    for layer in (ours, theirs):
        layer.zero_grad()
    assert_same_run(ours, theirs, [x, *states], dtype, wrap)
    for layer in (ours, theirs):
        layer.zero_grad()
    unbatched = [x[0], *(s[0] for s in states)]  # (input_size,) and (hidden_size,)
    assert_same_run(ours, theirs, unbatched, dtype, wrap)


# -- packed sequences ----------------------------------------------------------------------------


@pytest.mark.parametrize("lengths", [[3, 6, 1, 4], [6, 4, 4, 1]], ids=["unsorted", "sorted"])
@pytest.mark.parametrize("kind", LAYERS)
def test_packed_sequences_of_unequal_lengths(kind, lengths):
    """Unsorted lengths are sorted by pack_padded_sequence and put back by the layer; sorted
    ones are packed as they are (enforce_sorted=True)."""
    make, make_torch = LAYERS[kind]
    options = {"num_layers": 2, "bidirectional": True}
    ours, theirs = pair(
        lambda **o: make(3, 4, **o), lambda **o: make_torch(3, 4, **o), "float64", **options
    )
    rng = np.random.default_rng(6)
    padded = rng.standard_normal((6, 4, 3))
    in_order = lengths == sorted(lengths, reverse=True)

    def pack(x):
        library = rnn_utils if isinstance(x, cr.Tensor) else trnn
        return library.pack_padded_sequence(x, lengths, enforce_sorted=in_order)

    def with_packed_input(xs):
        return (pack(xs[0]), *(with_state(make) or (lambda xs: xs))(xs)[1:])

    inputs = [padded, *states(make, rng, "float64", (4, 4, 4))]
    assert_same_run(ours, theirs, inputs, "float64", with_packed_input)
    output, _ = ours(pack(cr.tensor(padded)))
    expected, _ = theirs(pack(torch.tensor(padded)))
    ours_padded, our_lengths = rnn_utils.pad_packed_sequence(output, batch_first=True)
    theirs_padded, their_lengths = trnn.pad_packed_sequence(expected, batch_first=True)
    np.testing.assert_allclose(
        ours_padded.detach().numpy(), theirs_padded.detach().numpy(), atol=1e-12
    )
    assert our_lengths.tolist() == their_lengths.tolist() == lengths


def test_sequence_utilities_match_pytorch():
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((n, 2)) for n in (2, 5, 5, 1, 3)]
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    for batch_first in (False, True):
        for side in ("right", "left"):
            a = rnn_utils.pad_sequence(ours, batch_first, -1.0, side)
            b = trnn.pad_sequence(theirs, batch_first, -1.0, side)
            np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    packed = rnn_utils.pack_sequence(ours, enforce_sorted=False)
    expected = trnn.pack_sequence(theirs, enforce_sorted=False)
    for field in ("data", "batch_sizes", "sorted_indices", "unsorted_indices"):
        np.testing.assert_array_equal(
            getattr(packed, field).detach().numpy(), getattr(expected, field).detach().numpy()
        )
    padded, lengths = rnn_utils.pad_packed_sequence(packed, True, 7.0, total_length=6)
    their_padded, their_lengths = trnn.pad_packed_sequence(expected, True, 7.0, total_length=6)
    np.testing.assert_array_equal(padded.detach().numpy(), their_padded.detach().numpy())
    assert lengths.tolist() == their_lengths.tolist() and lengths.dtype == np.int64
    weights = rng.standard_normal(padded.shape)
    (padded * cr.tensor(weights)).sum().backward()
    (their_padded * torch.tensor(weights)).sum().backward()
    for a, b in zip(ours, theirs):  # the gradient flows back through pack and pad
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
    sequences = rnn_utils.unpack_sequence(packed)
    assert [tuple(s.shape) for s in sequences] == [a.shape for a in arrays]
    longest_first = sorted(ours, key=lambda t: -t.shape[0])
    sorted_packed = rnn_utils.pack_sequence(longest_first)  # enforce_sorted: kept as it is
    assert sorted_packed.sorted_indices is None
    assert sorted_packed.batch_sizes.tolist() == [5, 4, 3, 2, 2]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: rnn_utils.pack_padded_sequence(x, [2, 3]), "decreasing order"),
        (lambda x: rnn_utils.pack_padded_sequence(x, [3, 0]), r"in \[1, 3\]"),
        (lambda x: rnn_utils.pack_padded_sequence(x, [4, 1]), r"in \[1, 3\]"),
        (lambda x: rnn_utils.pack_padded_sequence(x, [3]), "one per sequence"),
        (lambda x: rnn_utils.pack_padded_sequence(x, [2.5, 1.0]), "one per sequence"),
        (
            lambda x: rnn_utils.pad_packed_sequence(
                rnn_utils.pack_padded_sequence(x, [3, 2]), total_length=2
            ),
            "shorter than the longest",
        ),
        (lambda x: rnn_utils.pad_sequence([x[0], x[0, :, :1]]), "one \\* for all"),
    ],
)
def test_sequence_utilities_refuse_bad_lengths_with_one_line(call, message):
    with pytest.raises(ValueError, match=message):
        call(cr.zeros(3, 2, 2))


# -- training mode, speed, errors ------------------------------------------------------------------


def test_dropout_between_layers_in_training_only():
    ours, theirs = pair(
        lambda **o: nn.LSTM(4, 16, **o),
        lambda **o: torch.nn.LSTM(4, 16, **o),
        "float64",
        num_layers=2,
        dropout=0.5,
    )
    x = cr.tensor(np.random.default_rng(8).standard_normal((5, 3, 4)))
    with cr.no_grad():
        first, second = ours(x)[0], ours(x)[0]
    assert tuple(first.shape) == (5, 3, 16)
    assert not np.allclose(first.numpy(), second.numpy())  # a new mask each call
    # evaluation drops nothing (PyTorch's numbers); training's output differs, at the same scale
    ours.eval(), theirs.eval()
    evaluated = ours(x)[0].detach().numpy()
    np.testing.assert_allclose(
        evaluated, theirs(torch.tensor(x.numpy()))[0].detach().numpy(), atol=1e-12
    )
    assert not np.allclose(first.numpy(), evaluated)
    assert 0.3 < np.abs(first.numpy()).mean() / np.abs(evaluated).mean() < 3


def test_a_layer_is_a_handful_of_graph_nodes_whatever_the_length():
    """The backward through time runs inside one op per layer and direction, not a node per
    gate or step."""
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    counts = []
    for steps in (2, 20):
        output, (h, c) = lstm(cr.randn(steps, 2, 3))
        seen = []
        with cr.trace_backward(seen.append):
            (output.sum() + h.sum() + c.sum()).backward()
        counts.append(sum(type(e.op).__name__ == "LSTMSequence" for e in seen))
        counts.append(len(seen))
    assert counts[0] == counts[2] == 4 and counts[1] == counts[3] < 40


def test_flatten_parameters_and_all_weights():
    gru = nn.GRU(3, 4, num_layers=2)
    gru.flatten_parameters()
    assert [len(w) for w in gru.all_weights] == [4, 4]
    assert gru.all_weights[1][0] is gru.weight_ih_l1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: nn.LSTM(3, 4)(cr.randn(5, 2, 2)), r"LSTM.*\(5, 2, 2\).*last dimension must be 3"),
        (lambda: nn.GRU(3, 4)(cr.randn(2, 3, 4, 3)), "expected \\(L, N, 3\\)"),
        (lambda: nn.RNN(3, 4)(cr.randn(5, 2, 3), cr.zeros(2, 2, 4)), r"h_0 of shape \(2, 2, 4\)"),
        (lambda: nn.LSTM(3, 4)(cr.randn(5, 2, 3), cr.zeros(1, 2, 4)), "needs hx = \\(h_0, c_0\\)"),
        (
            lambda: nn.LSTM(3, 4)(cr.randn(5, 2, 3).double()),
            "dtype float64 but its weights are float32",
        ),
        (lambda: nn.LSTMCell(3, 4)(cr.randn(2, 3), (cr.zeros(3, 4), cr.zeros(3, 4))), r"\(3, 4\)"),
        (lambda: nn.LSTMCell(3, 4)(cr.randn(2, 3), cr.zeros(2, 4)), "needs hx = \\(h_0, c_0\\)"),
        (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), "tanh' or 'relu"),
        (lambda: nn.GRU(3, 4, dropout=1.5), "dropout"),
        (lambda: nn.RNNBase("ELMAN", 3, 4), "unknown mode"),
        (lambda: nn.LSTM(3, 4, num_layers=0), r"num_layers must be a whole number in \[1, 1024\]"),
    ],
)
def test_bad_inputs_and_settings_are_refused_with_one_line(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"type": "LSTM", "args": {"input_size": 3, "hidden_size": 4, "num_layers": 1 << 24}},
            "layer 0 \\(LSTM\\): bad arguments.*num_layers must be",
        ),
        (
            {"type": "RNNBase", "args": {"mode": "os.system", "input_size": 3, "hidden_size": 4}},
            "layer 0 \\(RNNBase\\): bad arguments.*unknown mode 'os.system'",
        ),
    ],
)
def test_a_model_file_with_bad_recurrent_settings_is_refused_before_building(entry, message):
    """A tiny number cannot ask for millions of weight names, nor a word for an unknown cell."""
    description = {"format": "chainrule.Sequential", "version": 1, "layers": [entry]}
    with pytest.raises(ValueError, match=message):
        describe.build(description)


# -- the ops, gradchecked with masks ---------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "op", [ElmanSequence, LSTMSequence, GRUSequence], ids=lambda op: op.__name__
)
def test_sequence_ops_with_a_mask_pass_gradcheck(op, reverse):
    rng = np.random.default_rng(9)
    steps, batch, inputs, size = 4, 3, 2, 3
    gates = {ElmanSequence: 1, LSTMSequence: 4, GRUSequence: 3}[op]
    mask = (np.arange(steps)[:, None] < np.array([4, 2, 1])[None, :])[:, :, None]
    states = 2 if op is LSTMSequence else 1
    arrays = [rng.standard_normal((steps, batch, inputs))]
    arrays += [rng.standard_normal((batch, size)) for _ in range(states)]
    arrays += [
        rng.standard_normal((gates * size, inputs)),
        rng.standard_normal((gates * size, size)),
    ]
    arrays += [rng.standard_normal(gates * size) for _ in range(2)]
    tensors = [cr.tensor(a * 0.7, requires_grad=True) for a in arrays]
    extra = {"relu": True} if op is ElmanSequence and reverse else {}
    report = cr.gradcheck(lambda *t: op.apply(*t, reverse=reverse, mask=mask, **extra), *tensors)
    assert report.passed
