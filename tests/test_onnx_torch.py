"""Models trained elsewhere come in: PyTorch models exported with ``torch.onnx.export`` load as
chainrule Sequentials that give PyTorch's outputs, keep PyTorch's weight names, and can be
looked at with the lens."""

import warnings

import numpy as np
import pytest

pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

import chainrule as cr  # noqa: E402

pytestmark = pytest.mark.torch
tnn = torch.nn


def assert_close(got, want, rtol=1e-5):
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def torch_mlp():
    torch.manual_seed(0)
    return tnn.Sequential(
        tnn.Flatten(),
        tnn.Linear(64, 32),
        tnn.ReLU(),
        tnn.Linear(32, 16),
        tnn.Tanh(),
        tnn.Linear(16, 10),
    )


def torch_cnn():
    """LeNet-5 with batch norm, GELU, dropout, average and adaptive pooling."""
    torch.manual_seed(0)
    model = tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2),
        tnn.BatchNorm2d(6),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5),
        tnn.GELU(),
        tnn.AvgPool2d(2),
        tnn.AdaptiveAvgPool2d(1),
        tnn.Flatten(),
        tnn.Linear(16, 84),
        tnn.LeakyReLU(0.1),
        tnn.Dropout(0.3),
        tnn.Linear(84, 10),
        tnn.LogSoftmax(dim=1),
    )
    model.train()  # a few batches, so that batch norm's running statistics are not the defaults
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 1, 28, 28) * 2 + 0.5)
    return model.eval()


def export(model, x, path, dynamo=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch")
            torch.onnx.export(model, (x,), path, dynamo=True, dynamic_shapes=({0: batch},))
        else:
            torch.onnx.export(
                model,
                (x,),
                path,
                dynamo=False,
                opset_version=17,
                input_names=["x"],
                dynamic_axes={"x": {0: "batch"}},
            )
    return path


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_a_pytorch_model_loads_and_gives_pytorchs_outputs(name, tmp_path):
    model, shape = (torch_mlp(), (8, 8)) if name == "mlp" else (torch_cnn(), (1, 28, 28))
    model.eval()
    path = export(model, torch.randn(2, *shape), tmp_path / f"{name}.onnx")
    loaded = cr.onnx.load(path)

    x = np.random.default_rng(0).standard_normal((9, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(cr.train.predict(loaded, x), expected)
    weights = {k: v.detach().numpy() for k, v in model.named_parameters()}
    if name == "mlp":  # the same layers in the same places: the same names
        assert dict(loaded.named_parameters()).keys() == weights.keys()
        for key, p in loaded.named_parameters():
            np.testing.assert_array_equal(p.detach().numpy(), weights[key])


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_pytorchs_default_dynamo_exporter_too(name, tmp_path):
    pytest.importorskip("onnxscript")  # what torch.onnx.export needs with dynamo=True
    model, shape = (torch_mlp(), (8, 8)) if name == "mlp" else (torch_cnn(), (1, 28, 28))
    path = export(model, torch.randn(2, *shape), tmp_path / f"{name}.onnx", dynamo=True)
    x = np.random.default_rng(0).standard_normal((5, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(cr.train.predict(cr.onnx.load(path), x), expected)


@pytest.mark.parametrize("dynamo", [False, True])
def test_pytorchs_pixel_shuffle_and_unshuffle_load_as_those_layers(dynamo, tmp_path):
    if dynamo:
        pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = tnn.Sequential(
        tnn.Conv2d(2, 8, 3, padding=1), tnn.PixelShuffle(2), tnn.PixelUnshuffle(2), tnn.ReLU()
    ).eval()
    path = export(model, torch.randn(2, 2, 6, 4), tmp_path / "shuffles.onnx", dynamo=dynamo)
    loaded = cr.onnx.load(path)
    names = [type(layer).__name__ for layer in loaded]
    assert names == ["Conv2d", "PixelShuffle", "PixelUnshuffle", "ReLU"]
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 4)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(cr.train.predict(loaded, x), expected)


def test_a_float64_model_loads_in_float64(tmp_path):
    model = tnn.Sequential(tnn.Linear(4, 8), tnn.GELU(), tnn.Linear(8, 2)).double().eval()
    loaded = cr.onnx.load(
        export(model, torch.randn(2, 4, dtype=torch.float64), tmp_path / "d.onnx")
    )
    x = np.random.default_rng(0).standard_normal((5, 4))
    assert loaded[0].weight.dtype == np.float64
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(cr.train.predict(loaded, x), expected, rtol=1e-12, atol=1e-12)


def test_the_lens_looks_inside_a_model_trained_elsewhere(tmp_path):
    model = torch_mlp().eval()
    loaded = cr.onnx.load(export(model, torch.randn(2, 8, 8), tmp_path / "mlp.onnx"))
    x = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    explanation = cr.lens.forward.explain_forward(loaded, x)
    with torch.no_grad():
        hidden = model[:3](torch.from_numpy(x[None])).numpy()[0]
    np.testing.assert_allclose(explanation.steps[2].outputs, hidden, rtol=1e-5, atol=1e-6)


def test_a_shape_computed_at_run_time_is_refused_with_advice(tmp_path):
    class ViewFlatten(tnn.Module):
        def forward(self, x):
            return x.view(x.size(0), -1)

    model = tnn.Sequential(tnn.Conv2d(1, 2, 3), ViewFlatten(), tnn.Linear(2 * 6 * 6, 3)).eval()
    path = export(model, torch.randn(2, 1, 8, 8), tmp_path / "view.onnx")
    with pytest.raises(cr.io.ChainruleFileError, match=r"\(Shape\): reads the shape.*nn.Flatten"):
        cr.onnx.load(path)
