"""Every layer describes itself: config round trip, save/load, output shape, weight shapes.

The table below must name every layer class that ``chainrule.nn`` exports (a test checks it), so
a new layer cannot be added without being checked here.
"""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import describe

# layer class name -> (a layer, the shape of an input it takes; integer inputs for Embedding)
EXAMPLES = {
    "Linear": (lambda: nn.Linear(5, 3), (4, 5)),
    "Linear without bias": (lambda: nn.Linear(5, 3, bias=False), (2, 7, 5)),
    "Identity": (lambda: nn.Identity(), (2, 3)),
    "Flatten": (lambda: nn.Flatten(), (2, 3, 4, 5)),
    "Flatten of the middle axes": (lambda: nn.Flatten(1, 2), (2, 3, 4, 5)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 6)), (3, 12)),
    "PixelShuffle": (lambda: nn.PixelShuffle(3), (2, 18, 2, 3)),
    "PixelShuffle without a batch axis": (lambda: nn.PixelShuffle(2), (8, 3, 3)),
    "PixelUnshuffle": (lambda: nn.PixelUnshuffle(2), (2, 3, 4, 6)),
    "Dropout": (lambda: nn.Dropout(0.3), (2, 3)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4), (5, 4)),
    "BatchNorm1d without statistics": (
        lambda: nn.BatchNorm1d(4, affine=False, track_running_stats=False),
        (5, 4, 3),
    ),
    "LayerNorm": (lambda: nn.LayerNorm((3, 4)), (2, 3, 4)),
    "ReLU": (lambda: nn.ReLU(), (2, 3)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), (2, 3)),
    "Sigmoid": (lambda: nn.Sigmoid(), (2, 3)),
    "Tanh": (lambda: nn.Tanh(), (2, 3)),
    "GELU": (lambda: nn.GELU("tanh"), (2, 3)),
    "Softplus": (lambda: nn.Softplus(2.0, 10.0), (2, 3)),
    "Softmax": (lambda: nn.Softmax(dim=1), (2, 3, 4)),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=-1), (2, 3)),
    "Conv2d": (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1), (2, 2, 9, 8)),
    "Conv2d same": (lambda: nn.Conv2d(4, 4, (3, 5), padding="same", groups=2), (1, 4, 6, 7)),
    "ConvTranspose2d": (
        lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1, groups=2),
        (2, 4, 5, 4),
    ),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 2, 4, dilation=2, bias=False), (2, 3, 5)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (2, 3, 8, 9)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 8, 9)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 8, 9)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    "Dropout2d": (lambda: nn.Dropout2d(0.25), (2, 3, 4, 4)),
    "PlaneFeatures": (lambda: nn.PlaneFeatures(["x", "y", "xy", "sinx"]), (6, 2)),
    "Embedding": (lambda: nn.Embedding(10, 4, padding_idx=0), (2, 5)),
    "LayerNorm without bias": (lambda: nn.LayerNorm(4, bias=False), (2, 4)),
    # layers of several inputs: a list of shapes (query, key, value; src, tgt; tgt, memory)
    "MultiheadAttention": (lambda: nn.MultiheadAttention(8, 2), [(4, 2, 8)] * 3),
    "MultiheadAttention kdim, vdim, bias_kv, zero_attn": (
        lambda: nn.MultiheadAttention(
            8, 2, kdim=3, vdim=5, add_bias_kv=True, add_zero_attn=True, batch_first=True
        ),
        [(2, 4, 8), (2, 6, 3), (2, 6, 5)],
    ),
    "TransformerEncoderLayer": (lambda: nn.TransformerEncoderLayer(8, 2, 16), (5, 2, 8)),
    "TransformerEncoderLayer pre-norm, gelu, no bias": (
        lambda: nn.TransformerEncoderLayer(
            8, 2, 16, activation="gelu", batch_first=True, norm_first=True, bias=False
        ),
        (2, 5, 8),
    ),
    "TransformerDecoderLayer": (
        lambda: nn.TransformerDecoderLayer(8, 2, 16),
        [(4, 2, 8), (5, 2, 8)],
    ),
    "TransformerEncoder": (
        lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, nn.LayerNorm(8)),
        (5, 2, 8),
    ),
    "TransformerDecoder": (
        lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 2),
        [(4, 2, 8), (5, 2, 8)],
    ),
    "Transformer": (lambda: nn.Transformer(8, 2, 1, 2, 16), [(5, 2, 8), (4, 2, 8)]),
    "Transformer with a custom encoder": (
        lambda: nn.Transformer(
            8,
            2,
            1,
            1,
            16,
            custom_encoder=nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 1),
        ),
        [(5, 2, 8), (4, 2, 8)],
    ),
    "RNN": (lambda: nn.RNN(3, 4, num_layers=2, nonlinearity="relu"), (5, 2, 3)),
    "LSTM": (lambda: nn.LSTM(3, 4, batch_first=True, bidirectional=True), (2, 5, 3)),
    "LSTM unbatched": (lambda: nn.LSTM(3, 4, bias=False), (5, 3)),
    "LSTM with projections": (
        lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2),
        (5, 2, 3),
    ),
    "LSTM with projections, unbatched": (lambda: nn.LSTM(3, 4, proj_size=3), (5, 3)),
    "GRU": (lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True, dropout=0.5), (5, 2, 3)),
    "RNNBase": (lambda: nn.RNNBase("GRU", 3, 4), (5, 2, 3)),
    "RNNBase LSTM with projections": (lambda: nn.RNNBase("LSTM", 3, 4, proj_size=1), (5, 2, 3)),
    "RNNCell": (lambda: nn.RNNCell(3, 4, nonlinearity="relu"), (2, 3)),
    "LSTMCell": (lambda: nn.LSTMCell(3, 4), (2, 3)),
    "GRUCell": (lambda: nn.GRUCell(3, 4, bias=False), (3,)),
    "DataParallel": (lambda: nn.DataParallel(nn.Linear(5, 3)), (4, 5)),
}
NOT_LAYERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict)


def exported_layer_classes() -> set:
    classes = {v for v in vars(nn).values() if isinstance(v, type) and issubclass(v, nn.Module)}
    losses = {c for c in classes if c.__module__ == "chainrule.nn.losses"}
    return classes - losses - {nn.Module, *NOT_LAYERS}


def test_every_exported_layer_has_an_example_here():
    covered = {type(make()) for make, _ in EXAMPLES.values()}
    missing = sorted(c.__name__ for c in exported_layer_classes() - covered)
    assert not missing, f"add these layers to EXAMPLES: {missing}"


def example_input(layer, shape):
    rng = np.random.default_rng(0)
    if isinstance(layer, nn.Embedding):
        return cr.tensor(rng.integers(0, layer.num_embeddings, shape))
    return cr.tensor(rng.normal(size=shape).astype(np.float32))


def shapes_of(output):
    """The shape of an output, or the nested tuple of shapes of a tuple of outputs (an LSTM's
    (output, (h_n, c_n)))."""
    if isinstance(output, tuple):
        return tuple(shapes_of(o) for o in output)
    return tuple(output.shape)


def arrays_of(output) -> list:
    if isinstance(output, tuple):
        return [a for o in output for a in arrays_of(o)]
    return [output.detach().numpy()]


@pytest.mark.parametrize("name", EXAMPLES)
def test_layer_describes_itself(name, tmp_path):
    make, shape = EXAMPLES[name]
    layer = make().eval()
    cls = type(layer)
    assert describe.REGISTERED[cls.__name__] is cls

    # config round trip, checked as a file's values are
    config = layer.config()
    rebuilt = cls.from_config(describe.checked_arguments(cls, config))
    assert rebuilt.config() == config

    # weight shapes and count without building, equal to the real ones
    real = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert {k: tuple(v) for k, v in cls.state_shapes(config).items()} == real
    declared = sum(math.prod(s) for s in cls.state_shapes(config).values())
    assert declared == sum(math.prod(s) for s in real.values())

    if isinstance(shape, list):
        several_inputs_give_the_same_outputs_after_loading(layer, shape, tmp_path)
        return

    # output shape without computing, equal to the real forward's
    x = example_input(layer, shape)
    output = layer(x)
    assert layer.output_shape(shape) == shapes_of(output)

    # save and load: the same outputs
    cr.save(nn.Sequential(layer), tmp_path / "model")
    loaded = cr.load(tmp_path / "model").eval()
    for ours, expected in zip(arrays_of(loaded(x)), arrays_of(output), strict=True):
        np.testing.assert_array_equal(ours, expected)


def several_inputs_give_the_same_outputs_after_loading(layer, shapes: list, tmp_path):
    """The rest of the check above for a layer called with several inputs: its output_shape
    takes their shapes and gives the shape of its (first) output."""
    inputs = [example_input(layer, shape) for shape in shapes]
    output = layer(*inputs)
    output = output[0] if isinstance(output, tuple) else output
    assert layer.output_shape(*shapes) == tuple(output.shape)
    cr.save(layer, tmp_path / "model")
    loaded = cr.load(tmp_path / "model").eval()
    again = loaded(*inputs)
    again = again[0] if isinstance(again, tuple) else again
    np.testing.assert_array_equal(again.detach().numpy(), output.detach().numpy())


@pytest.mark.parametrize(
    "name", ["Linear", "Conv2d", "MaxPool2d", "LayerNorm", "PlaneFeatures", "PixelShuffle"]
)
def test_output_shape_refuses_what_the_forward_refuses(name):
    make, shape = EXAMPLES[name]
    layer = make()
    wrong = {"MaxPool2d": shape[1:], "Conv2d": (2, 3, 9, 8), "PixelShuffle": (2, 17, 2, 3)}.get(
        name, (*shape[:-1], shape[-1] + 1)
    )
    with pytest.raises(ValueError):
        layer(example_input(layer, wrong))
    with pytest.raises(ValueError):
        layer.output_shape(wrong)


@nn.saveable
class TwoBranch(nn.Module):
    """A module of a user's own: two Linear layers whose outputs are added."""

    def __init__(self, inputs: int, outputs: int = 2, scale: float = 1.0):
        super().__init__()
        self.inputs, self.outputs, self.scale = inputs, outputs, scale
        self.left, self.right = nn.Linear(inputs, outputs), nn.Linear(inputs, outputs)

    def config(self):
        return {"inputs": self.inputs, "outputs": self.outputs, "scale": self.scale}

    def forward(self, x):
        return (self.left(x) + self.right(x)) * self.scale


def test_a_module_of_your_own_saves_and_loads_by_its_config(tmp_path):
    model = nn.Sequential(TwoBranch(3, 4, scale=0.5), nn.ReLU(), nn.Linear(4, 2))
    x = cr.randn(5, 3)
    cr.save(model, tmp_path / "mine")
    loaded = cr.load(tmp_path / "mine")
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())
    alone = TwoBranch(3)
    cr.save(alone, tmp_path / "alone")
    assert isinstance(cr.load(tmp_path / "alone"), TwoBranch)


class NotRegistered(nn.Module):
    def __init__(self, width: int = 3):
        super().__init__()
        self.width = width
        self.layer = nn.Linear(width, width)

    def config(self):
        return {"width": self.width}

    def forward(self, x):
        return self.layer(x)


def test_an_unregistered_class_is_saved_only_when_named_on_load(tmp_path):
    with pytest.raises(TypeError, match="saveable"):
        cr.save(nn.Sequential(NotRegistered()), tmp_path / "no")
    describe.REGISTERED.pop("NotRegistered", None)
    # written by hand as a file would be: loading needs the class passed by name
    description = {"format": "chainrule.Module", "version": 2, "module": {"type": "NotRegistered"}}
    with pytest.raises(ValueError, match="unknown layer type 'NotRegistered'"):
        describe.build(description)
    model = describe.build(description, modules=[NotRegistered])
    assert isinstance(model, NotRegistered) and model.width == 3


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"type": "Linear", "args": {"in_features": 2, "out_features": 2, "device": "cuda"}},
            "device",
        ),
        ({"type": "Linear", "args": {"in_features": 2, "out_features": 2, "bias": "no"}}, "bias"),
        ({"type": "LeakyReLU", "args": {"negative_slope": "abc"}}, "negative_slope"),
        ({"type": "Linear", "args": {"in_features": 2}}, "missing argument 'out_features'"),
        ({"type": "Softmax", "args": {"dim": 1.5e300}}, "dim"),
        ({"type": "os.system", "args": {}}, "unknown layer type"),
        (
            {"type": "TransformerEncoder", "args": {"encoder_layer": {"type": "os.system"}}},
            "argument encoder_layer: unknown layer type 'os.system'",
        ),
        (
            {
                "type": "TransformerEncoder",
                "args": {
                    "encoder_layer": {"type": "Linear", "args": {"in_features": 2}},
                    "num_layers": 1,
                },
            },
            "missing argument 'out_features'",
        ),
        (
            {
                "type": "TransformerEncoder",
                "args": {
                    "encoder_layer": {
                        "type": "Linear",
                        "args": {"in_features": 2, "out_features": 2},
                    },
                    "num_layers": 1 << 24,
                },
            },
            "more than 65536 tensors",
        ),
        (
            {
                "type": "TransformerEncoder",
                "args": {
                    "encoder_layer": {
                        "type": "TransformerEncoder",
                        "args": {"encoder_layer": {"type": "Sequential", "layers": []}},
                    },
                    "num_layers": 1,
                },
            },
            "expected a layer",
        ),
    ],
)
def test_values_from_a_file_are_checked_as_the_constructor_takes_them(entry, message):
    description = {"format": "chainrule.Sequential", "version": 1, "layers": [entry]}
    with pytest.raises(ValueError, match=message):
        describe.build(description)


def test_a_pooling_window_from_a_file_is_checked_when_built():
    entry = {"type": "MaxPool2d", "args": {"kernel_size": 2, "padding": 2**24}}
    description = {"format": "chainrule.Sequential", "version": 1, "layers": [entry]}
    with pytest.raises(ValueError, match="padding must be at most half the kernel size"):
        describe.build(description)


def test_an_output_no_memory_holds_is_refused_before_allocating(monkeypatch):
    from chainrule import backend

    monkeypatch.setattr(backend, "available_memory", lambda: 1 << 20)
    layer = nn.AdaptiveAvgPool2d(2**12)  # 2^24 values of 4 bytes: 64 MiB > 1 MiB free
    with pytest.raises(MemoryError, match=r"AdaptiveAvgPool2d\(output_size=4096\).*GiB free"):
        layer(cr.ones(1, 1, 4, 4))


def test_a_softmax_axis_from_a_file_that_the_input_lacks_is_named_with_the_layer():
    description = {
        "format": "chainrule.Sequential",
        "version": 1,
        "layers": [{"type": "Softmax", "args": {"dim": 7}}],
    }
    model = describe.build(description)
    with pytest.raises(ValueError, match=r"Softmax\(dim=7\) got input of shape \(2, 3\): dim=7"):
        model(cr.ones(2, 3))


def test_chainrule_info_shows_a_saved_model_of_your_own_without_building_it(tmp_path, capsys):
    from chainrule.cli import main

    cr.save(nn.Sequential(TwoBranch(3, 4, scale=0.5), nn.ReLU()), tmp_path / "mine")
    describe.REGISTERED.pop("TwoBranch")  # as in another process, where the class is unknown
    try:
        assert main(["info", str(tmp_path / "mine")]) == 0
    finally:
        describe.register(TwoBranch)
    shown = capsys.readouterr().out
    assert "TwoBranch(inputs=3, outputs=4, scale=0.5)" in shown and "ReLU(" in shown
    assert "32 numbers in 4 tensors" in shown  # 2 x (3 x 4 + 4)
