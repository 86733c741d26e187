"""PyTorch's everyday surface that published programs use, against PyTorch itself: import
paths, legacy constructors, ``inplace=`` flags, and the small ops and losses those programs call."""

import importlib

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")

# -- import paths ----------------------------------------------------------------------------------

# (module path under torch / chainrule, names a program imports from it)
PATHS = [
    ("utils.data", ["DataLoader", "TensorDataset", "RandomSampler", "random_split"]),
    ("utils.data.dataloader", ["DataLoader", "default_collate", "get_worker_info"]),
    ("utils.data.dataset", ["Dataset", "TensorDataset", "Subset", "ConcatDataset"]),
    ("utils.data.sampler", ["Sampler", "RandomSampler", "BatchSampler", "SequentialSampler"]),
    ("backends.cudnn", ["deterministic", "benchmark", "is_available"]),
    ("nn.parallel", ["DataParallel"]),
    ("nn.modules", []),
    ("nn.modules.module", ["Module"]),
    ("nn.modules.container", ["Sequential", "ModuleList", "ModuleDict"]),
    ("nn.modules.linear", ["Linear", "Identity"]),
    ("nn.modules.activation", ["ReLU", "LeakyReLU", "GELU", "Softmax"]),
    ("nn.modules.conv", ["Conv2d"]),
    ("nn.modules.pooling", ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]),
    ("nn.modules.batchnorm", ["BatchNorm1d", "BatchNorm2d"]),
    ("nn.modules.normalization", ["LayerNorm"]),
    ("nn.modules.dropout", ["Dropout", "Dropout2d"]),
    ("nn.modules.rnn", ["RNN", "LSTM", "GRU", "RNNBase", "LSTMCell"]),
    ("nn.modules.transformer", ["TransformerEncoderLayer", "Transformer"]),
    ("nn.modules.sparse", ["Embedding"]),
    ("nn.modules.flatten", ["Flatten", "Unflatten"]),
    ("nn.modules.loss", ["MSELoss", "CrossEntropyLoss", "NLLLoss", "_Loss"]),
]


@pytest.mark.parametrize("path, names", PATHS, ids=[p for p, _ in PATHS])
def test_modules_import_from_pytorchs_paths(path, names):
    ours, theirs = (
        importlib.import_module(f"chainrule.{path}"),
        importlib.import_module(f"torch.{path}"),
    )
    for name in names:
        assert hasattr(theirs, name), f"torch.{path} has no {name}: fix this table"
        assert hasattr(ours, name), f"chainrule.{path} has no {name}"
    classes = [getattr(ours, n) for n in names if isinstance(getattr(ours, n), type)]
    assert all(
        c is getattr(nn, c.__name__, c) or c.__module__.startswith("chainrule.") for c in classes
    )


def test_utils_data_keeps_its_names_and_is_a_package():
    from chainrule.utils import data

    assert data.sampler.RandomSampler is cr.data.RandomSampler
    assert data.dataloader.DataLoader is data.DataLoader is cr.data.DataLoader
    assert all(hasattr(data, name) for name in data.__all__) and hasattr(data, "__path__")


def test_backends_cudnn_flags_are_set_and_read_as_in_pytorch():
    import chainrule.backends.cudnn as cudnn

    assert cr.backends.cudnn is cudnn and not cudnn.is_available()
    assert cudnn.enabled == torch.backends.cudnn.enabled and cudnn.version() is None
    before = cudnn.deterministic
    try:
        cr.backends.cudnn.deterministic = True
        assert cudnn.deterministic is True
    finally:
        cudnn.deterministic = before
    assert not cr.backends.mps.is_available() and not cr.backends.cuda.is_built()


def test_data_parallel_is_a_pass_through_named_as_pytorchs():
    inner = nn.Linear(4, 2)
    model = nn.DataParallel(inner, device_ids=[0, 1])
    theirs = torch.nn.DataParallel(torch.nn.Linear(4, 2))  # on a CPU-only torch: a pass-through
    assert list(model.state_dict()) == list(theirs.state_dict()) == ["module.weight", "module.bias"]
    x = cr.randn(3, 4)
    np.testing.assert_array_equal(model(x).detach().numpy(), inner(x).detach().numpy())
    assert model.module is inner and len(list(model.parameters())) == 2
    with pytest.raises(TypeError, match="DataParallel wraps a Module"):
        nn.DataParallel(lambda x: x)
