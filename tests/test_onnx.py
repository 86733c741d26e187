"""ONNX export and import: onnxruntime gives chainrule's outputs for every layer and for the CLI's
models; the files are valid opset-17 graphs with a symbolic batch axis; loading reads them back
(and refuses what it cannot read, naming the node)."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import chainrule as cr  # noqa: E402
from chainrule import nn, runs  # noqa: E402
from chainrule.cli import main  # noqa: E402
from chainrule.io import ChainruleFileError  # noqa: E402
from chainrule.onnx import IR_VERSION, OPSET  # noqa: E402


def assert_close(got, want, rtol=1e-5):
    """Equal to ``rtol`` of the largest value (float32 sums in another order differ slightly)."""
    scale = np.abs(want).max(initial=0.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def run_onnx(path, x, output=None):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = session.run(None if output is None else [output], {name: x.astype(np.float32)})
    return outputs[0]


def forward(model, x):
    return cr.train.predict(model, x)


def with_statistics(layer):
    """A batch norm layer whose running statistics and affine weights are not the defaults."""
    rng = np.random.default_rng(1)
    c = layer.num_features
    state = layer.state_dict()
    state["running_mean"] = rng.uniform(-1, 1, c).astype(np.float32)
    state["running_var"] = rng.uniform(0.5, 2, c).astype(np.float32)
    if layer.affine:
        state["weight"] = rng.uniform(0.5, 2, c).astype(np.float32)
        state["bias"] = rng.uniform(-1, 1, c).astype(np.float32)
    layer.load_state_dict(state)
    return layer


LAYERS = {
    "Linear": (lambda: nn.Linear(6, 4), (6,)),
    "Linear (N, L, in)": (lambda: nn.Linear(6, 4), (3, 6)),
    "Linear without bias": (lambda: nn.Linear(6, 4, bias=False), (6,)),
    "ReLU": (nn.ReLU, (7,)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), (7,)),
    "Sigmoid": (nn.Sigmoid, (7,)),
    "Tanh": (nn.Tanh, (7,)),
    "GELU": (nn.GELU, (7,)),
    "GELU tanh": (lambda: nn.GELU("tanh"), (7,)),
    "Softplus": (nn.Softplus, (7,)),
    "Softplus beta threshold": (lambda: nn.Softplus(beta=2.0, threshold=1.5), (7,)),
    "Identity": (nn.Identity, (7,)),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3), (3, 9, 9)),
    "Conv2d stride padding": (
        lambda: nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2)),
        (3, 9, 9),
    ),
    "Conv2d dilation": (lambda: nn.Conv2d(3, 4, 3, dilation=2, padding=2), (3, 9, 9)),
    "Conv2d groups": (lambda: nn.Conv2d(4, 6, 3, groups=2, bias=False), (4, 8, 8)),
    "Conv2d depthwise": (lambda: nn.Conv2d(4, 4, 3, groups=4, stride=2), (4, 9, 9)),
    "Conv2d same (even kernel)": (lambda: nn.Conv2d(2, 3, 4, padding="same"), (2, 9, 9)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 4, 3), (3, 5, 5)),
    "ConvTranspose2d stride padding output_padding": (
        lambda: nn.ConvTranspose2d(3, 4, (4, 3), stride=(2, 3), padding=(1, 0), output_padding=1),
        (3, 5, 4),
    ),
    "ConvTranspose2d dilation groups": (
        lambda: nn.ConvTranspose2d(4, 6, 3, dilation=2, groups=2, bias=False),
        (4, 4, 4),
    ),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (3, 8, 8)),
    "MaxPool2d stride padding": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (3, 9, 9)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), (3, 8, 8)),
    "AvgPool2d stride padding": (lambda: nn.AvgPool2d(3, stride=2, padding=1), (3, 9, 9)),
    "AdaptiveAvgPool2d 1x1": (lambda: nn.AdaptiveAvgPool2d(1), (3, 7, 7)),
    "AdaptiveAvgPool2d even bins": (lambda: nn.AdaptiveAvgPool2d(2), (3, 8, 8)),
    "AdaptiveAvgPool2d uneven bins": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (3, 7, 5)),
    "BatchNorm1d": (lambda: with_statistics(nn.BatchNorm1d(5)), (5,)),
    "BatchNorm1d (N, C, L)": (lambda: with_statistics(nn.BatchNorm1d(5)), (5, 4)),
    "BatchNorm1d without affine": (lambda: with_statistics(nn.BatchNorm1d(5, affine=False)), (5,)),
    "BatchNorm2d": (lambda: with_statistics(nn.BatchNorm2d(3, eps=1e-3)), (3, 5, 5)),
    "Dropout": (lambda: nn.Dropout(0.5), (7,)),
    "Dropout2d": (lambda: nn.Dropout2d(0.5), (3, 4, 4)),
    "Flatten": (nn.Flatten, (3, 4, 5)),
    "Flatten(1, 2)": (lambda: nn.Flatten(1, 2), (3, 4, 5)),
    "Flatten(2, 3)": (lambda: nn.Flatten(2, -1), (3, 4, 5)),
    "Unflatten": (lambda: nn.Unflatten(1, (1, 12)), (12, 5)),
    "PixelShuffle": (lambda: nn.PixelShuffle(2), (8, 3, 5)),
    "LayerNorm": (lambda: nn.LayerNorm(6), (6,)),
    "LayerNorm 2-D": (lambda: nn.LayerNorm((4, 6), eps=1e-3), (4, 6)),
    "LayerNorm without affine": (lambda: nn.LayerNorm(6, elementwise_affine=False), (3, 6)),
    "LayerNorm without bias": (lambda: nn.LayerNorm(6, bias=False), (3, 6)),
    "Softmax": (lambda: nn.Softmax(dim=1), (7,)),
    "Softmax over channels": (lambda: nn.Softmax(dim=1), (3, 4, 4)),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=-1), (7,)),
}


def random_layer_model(make):
    cr.manual_seed(0)
    layer = make()
    if hasattr(layer, "weight") and layer.weight is not None and not hasattr(layer, "running_mean"):
        state = layer.state_dict()  # make scale and shift (LayerNorm) differ from ones and zeros
        rng = np.random.default_rng(2)
        layer.load_state_dict(
            {k: rng.uniform(0.5, 1.5, v.shape).astype(v.dtype) for k, v in state.items()}
        )
    return nn.Sequential(layer)


@pytest.mark.parametrize("name", list(LAYERS))
def test_each_layer_exports_runs_in_onnxruntime_and_loads_back(name, tmp_path):
    make, shape = LAYERS[name]
    model = random_layer_model(make)
    rng = np.random.default_rng(0)
    path = cr.onnx.export(model, tmp_path / "layer.onnx", rng.standard_normal((2, *shape)) * 2)

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == IR_VERSION == 8
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)] == [("", 17)]
    for value in (*proto.graph.input, *proto.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    weights = {t.name for t in proto.graph.initializer}
    assert set(model.state_dict()) - {"0.num_batches_tracked"} <= weights

    x = (rng.standard_normal((5, *shape)) * 2).astype(np.float32)  # another batch size
    expected = forward(model, x)
    assert_close(run_onnx(path, x), expected)
    loaded = cr.onnx.load(path)
    assert_close(forward(loaded, x), expected)
    assert not loaded.training


def test_pixel_unshuffle_exports_as_a_reshape_transpose_reshape_and_loads_back(tmp_path):
    """PixelUnshuffle has no ONNX operator of its own (SpaceToDepth orders the channels
    otherwise): it exports as three nodes that onnxruntime runs and cr.onnx.load reads back as
    the one layer, between others."""
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.PixelUnshuffle(3), nn.ReLU())
    x = np.random.default_rng(0).standard_normal((5, 2, 6, 9)).astype(np.float32)
    path = cr.onnx.export(model, tmp_path / "unshuffle.onnx", x[:2])
    assert [n.op_type for n in onnx.load(str(path)).graph.node] == [
        "Conv",
        "Reshape",
        "Transpose",
        "Reshape",
        "Relu",
    ]
    assert_close(run_onnx(path, x), forward(model, x))
    loaded = cr.onnx.load(path)
    assert [type(layer).__name__ for layer in loaded] == ["Conv2d", "PixelUnshuffle", "ReLU"]
    assert loaded[1].downscale_factor == 3
    assert_close(forward(loaded, x), forward(model, x))


def test_a_reshape_transpose_reshape_that_is_not_pixel_unshuffle_is_refused(tmp_path):
    """Blocks moved in another order are not PixelUnshuffle: refused in one line naming it."""
    model = nn.Sequential(nn.PixelUnshuffle(2))
    path = cr.onnx.export(model, tmp_path / "unshuffle.onnx", np.zeros((1, 1, 4, 4), np.float32))
    proto = onnx.load(str(path))
    transpose = next(n for n in proto.graph.node if n.op_type == "Transpose")
    transpose.attribute[0].ints[:] = [0, 1, 2, 4, 3, 5]  # rows of blocks first: another layout
    onnx.save(proto, str(path))
    with pytest.raises(cr.io.ChainruleFileError, match="neither a flatten nor a split"):
        cr.onnx.load(path)
    transpose.attribute[0].ints[:] = [0, 1, 3, 5, 2, 4]  # the layout back, the target shape wrong
    shape = next(t for t in proto.graph.initializer if t.name.endswith("shape"))
    wrong = onnx.numpy_helper.to_array(shape).copy()
    wrong[1:] = [wrong[1] // 2, wrong[2] * 2, wrong[3]]
    shape.CopyFrom(onnx.numpy_helper.from_array(wrong, shape.name))
    onnx.save(proto, str(path))
    with pytest.raises(cr.io.ChainruleFileError, match="PixelUnshuffle"):
        cr.onnx.load(path)


def test_a_whole_cnn_and_a_nested_mlp(tmp_path):
    cr.manual_seed(0)
    cnn = cr.models.from_spec("conv6k5p2,bn,pool2,conv16k5,avgpool2,drop25,fc32", (28, 28), 10)
    for layer in cnn:
        if isinstance(layer, nn.BatchNorm2d):
            with_statistics(layer)
    mlp = nn.Sequential(
        nn.Flatten(),
        nn.Sequential(nn.Linear(64, 32), nn.GELU()),
        nn.Dropout(0.2),
        nn.Linear(32, 10),
    )
    x_cnn = np.random.default_rng(0).standard_normal((7, 28, 28)).astype(np.float32)
    x_mlp = np.random.default_rng(0).standard_normal((7, 8, 8)).astype(np.float32)
    for model, x in ((cnn, x_cnn), (mlp, x_mlp)):
        model.train()  # export writes the evaluation form, and leaves the mode as it was
        path = cr.onnx.export(model, tmp_path / "model.onnx", x[:1])
        assert model.training
        assert_close(run_onnx(path, x), forward(model, x))
        loaded = cr.onnx.load(path)
        assert_close(forward(loaded, x), forward(model, x))
    assert "1.0.weight" in {t.name for t in onnx.load(str(path)).graph.initializer}


def test_what_cannot_be_exported_is_named(tmp_path):
    class Doubler(nn.Module):
        def forward(self, x):
            return x * 2

    x = np.zeros((1, 4), dtype=np.float32)
    with pytest.raises(TypeError, match=r"layer 1 \(Doubler\) has no ONNX form"):
        cr.onnx.export(nn.Sequential(nn.Linear(4, 4), Doubler()), tmp_path / "m.onnx", x)
    with pytest.raises(TypeError, match="Sequential"):
        cr.onnx.export(Doubler(), tmp_path / "m.onnx", x)
    with pytest.raises(ValueError, match=r"layer 0 \(BatchNorm1d.*no running statistics"):
        cr.onnx.export(
            nn.Sequential(nn.BatchNorm1d(4, track_running_stats=False)), tmp_path / "m.onnx", x
        )
    with pytest.raises(ValueError, match="batch axis"):
        cr.onnx.export(nn.Sequential(nn.Flatten(0)), tmp_path / "m.onnx", x)
    assert not (tmp_path / "m.onnx").exists()


def test_import_time_does_not_pay_for_onnx_or_sklearn():
    import subprocess
    import sys

    code = "import sys, chainrule; print('onnx' in sys.modules, 'sklearn' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


# -- the command line ------------------------------------------------------------------------------

RUNS = {
    "digits MLP": ["--hidden", "24,12", "--dropout", "0.1"],
    "digits CNN with batch norm": ["--model", "conv4k3p1,bn,pool2,fc16"],
    "is it a 3": ["--hidden", "16", "--target", "3"],
    "spirals": ["--dataset", "spirals", "--hidden", "16,16", "--activation", "tanh"],
}


@pytest.fixture(scope="module", params=list(RUNS))
def trained_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    args = ["train", "--out", str(out), "--epochs", "2", "--quiet", *RUNS[request.param]]
    assert main(args) == 0
    return out


def test_the_cli_exports_a_run_that_takes_raw_inputs_like_predict(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run), "--format", "onnx"]) == 0
    assert "model.onnx" in capsys.readouterr().out
    path = trained_run / "model.onnx"
    model, config, metadata = runs.load_run(trained_run)
    preprocessing = metadata["preprocessing"]
    prepared = runs.prepare(config)
    raw_test, _, pixel_max = runs.load_raw(config)[1][0], None, preprocessing["pixel_max"]
    raw = np.asarray(raw_test[:20], dtype=np.float32)

    expected_logits = forward(model, prepared.test[0][:20])
    assert_close(run_onnx(path, raw, "logits"), expected_logits)
    files = []
    for i in range(3):
        np.save(tmp_path / f"{i}.npy", raw[i])
        files.append(tmp_path / f"{i}.npy")
    predictions = runs.predict_files(trained_run, files, top=10)
    probabilities = run_onnx(path, raw[:3], "probabilities")
    name = runs.class_names(preprocessing)  # a one-vs-rest run's classes are "3" and "not 3"
    index = {name(i): i for i in range(probabilities.shape[1])}
    for row, prediction in zip(probabilities, predictions):
        assert name(int(np.argmax(row))) == prediction["prediction"]
        for cls, p in prediction["top"]:
            assert row[index[cls]] == pytest.approx(p, rel=1e-5, abs=1e-7)
    assert json.loads(onnx.load(str(path)).metadata_props[0].value)["pixel_max"] == pixel_max
    assert_close(forward(cr.onnx.load(path), prepared.test[0][:20]), expected_logits)


def test_the_cli_export_options_and_errors(trained_run, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "net.onnx"
    assert main(["export", str(trained_run), "--out", str(out)]) == 0
    assert out.exists()
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["export", str(tmp_path)]) == 2  # a folder without a model
    assert "not a chainrule run folder" in capsys.readouterr().err


# -- reading files from elsewhere ------------------------------------------------------------------


def make_model(nodes, initializers=(), input_shape=("N", 4), opset=17):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [
            helper.make_tensor_value_info(
                nodes[-1].output[0], TensorProto.FLOAT, [None] * len(input_shape)
            )
        ],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def save(model, path):
    path.write_bytes(model.SerializeToString())
    return path


def test_load_refuses_what_it_cannot_read_naming_the_node(tmp_path):
    from onnx import helper, numpy_helper

    def refused(model, pattern):
        with pytest.raises(ChainruleFileError, match=pattern):
            cr.onnx.load(save(model, tmp_path / "m.onnx"))

    cos = helper.make_node("Cos", ["x"], ["y"], name="the_cos")
    refused(make_model([cos]), r"node 'the_cos' \(Cos\): not supported")
    relu = helper.make_node("Relu", ["x"], ["r"], name="relu")
    residual = helper.make_node("Add", ["r", "x"], ["y"], name="residual")
    refused(make_model([relu, residual]), "read by 2 nodes.*not branches")
    pool = helper.make_node("MaxPool", ["x"], ["y"], name="p", kernel_shape=[2, 2], ceil_mode=1)
    refused(make_model([pool], input_shape=("N", 1, 5, 5)), r"node 'p' \(MaxPool\): ceil_mode")
    refused(make_model([relu], opset=11), "opset")
    refused(make_model([relu], input_shape=("N", "features")), "needs a fixed size")

    weight = numpy_helper.from_array(np.ones((3, 4), dtype=np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="../weights.bin")
    (tmp_path.parent / "weights.bin").write_bytes(bytes(48))
    gemm = helper.make_node("Gemm", ["x", "w"], ["y"], name="g", transB=1)
    refused(make_model([gemm], [weight]), "only from the model's own folder")
    weight.external_data[0].value = "/etc/passwd"
    refused(make_model([gemm], [weight]), "only from the model's own folder")
    weight.external_data[0].value = "weights.bin"
    (tmp_path / "weights.bin").write_bytes(bytes(40))
    refused(make_model([gemm], [weight]), "needs 48 bytes at offset 0 of weights.bin")
    (tmp_path / "weights.bin").write_bytes(np.arange(12, dtype=np.float32).tobytes())
    model = cr.onnx.load(save(make_model([gemm], [weight]), tmp_path / "m.onnx"))
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), np.arange(12).reshape(3, 4))

    huge = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    refused(make_model([gemm], [huge]), r"'w' has shape \[1048576, 1048576\], too large")

    (tmp_path / "junk.onnx").write_bytes(b"\x00\xffnot a protobuf" * 10)
    with pytest.raises(ChainruleFileError, match="not a valid ONNX model"):
        cr.onnx.load(tmp_path / "junk.onnx")
    with pytest.raises(ChainruleFileError, match="not found"):
        cr.onnx.load(tmp_path / "absent.onnx")


def test_a_reshape_to_a_fixed_shape_becomes_flatten_or_unflatten(tmp_path):
    from onnx import helper, numpy_helper

    for target, layer in (([-1, 60], nn.Flatten), ([0, 3, 4, 5], nn.Unflatten)):
        shape = numpy_helper.from_array(np.array(target, dtype=np.int64), "shape")
        node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")
        input_shape = ("N", 60) if layer is nn.Unflatten else ("N", 3, 4, 5)
        model = cr.onnx.load(save(make_model([node], [shape], input_shape), tmp_path / "r.onnx"))
        assert isinstance(model[0], layer)
    bad = numpy_helper.from_array(np.array([-1, 30], dtype=np.int64), "shape")
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")
    with pytest.raises(ChainruleFileError, match="moves values between examples"):
        cr.onnx.load(save(make_model([node], [bad], ("N", 60)), tmp_path / "r.onnx"))


def test_the_onnxruntime_check_counts_a_nan_as_a_difference():
    from chainrule.onnx.to_onnx import onnxruntime_difference

    model = nn.Sequential(nn.Linear(3, 2))
    x = np.ones((2, 3), dtype=np.float32)
    data, expected = cr.onnx.to_onnx.build(model, x)
    expected = {name: np.full_like(value, np.nan) for name, value in expected.items()}
    assert onnxruntime_difference(data.SerializeToString(), {"input": x}, expected) == np.inf
