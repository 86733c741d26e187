"""ONNX: hand a trained network to onnxruntime (or any ONNX tool), and bring ONNX models in.

>>> cr.onnx.export(model, "digits.onnx", x[:1])     # opset 17, symbolic batch, checked
>>> model = cr.onnx.load("from_pytorch.onnx")       # a chainrule Sequential, in eval mode

* :func:`export` writes a :class:`~chainrule.nn.Sequential` of known layers as an ONNX graph
  (opset 17, IR version 8 so that onnxruntime 1.12 and later read it): weights are initializers
  named as in ``state_dict()``, the batch axis is symbolic, ``onnx.checker`` passes, and
  onnxruntime's output is compared with chainrule's on the example input.
* :func:`export_run` does the same for a run folder, with the run's preprocessing (pixel
  scaling and standardising) inside the graph, so the file takes raw inputs as ``chainrule
  predict`` does.
* :func:`load` builds a Sequential from an ONNX file made of the operators :func:`export` writes
  (for example a PyTorch model exported with ``torch.onnx.export``); it reads the file as data,
  never runs anything from it, and refuses anything else with a message naming the node.

Needs the ``onnx`` and ``onnxruntime`` packages: ``pip install 'chainrule[onnx]'``. They are
imported on first use, so ``import chainrule`` does not pay for them.
"""

from __future__ import annotations

import importlib

OPSET = 17
"""The ONNX operator set written (and the newest whose semantics :func:`load` relies on)."""
IR_VERSION = 8
"""The ONNX file-format version written: the one that came with opset 17 (ONNX 1.12)."""


def require(package: str):
    """Import ``package`` (``onnx`` or ``onnxruntime``), or say how to install it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ImportError(
            f"chainrule.onnx needs the {package} package: pip install 'chainrule[onnx]'"
        ) from None


def export(model, path, example_input, *, check: bool = True, **options):
    """Write ``model`` to ``path`` as ONNX; see :func:`chainrule.onnx.to_onnx.export`."""
    from .to_onnx import export as export_model

    return export_model(model, path, example_input, check=check, **options)


def export_run(run_dir, path=None, *, check: bool = True):
    """Write a run folder's model, with its preprocessing, as ONNX (default
    ``RUN_DIR/model.onnx``); see :func:`chainrule.onnx.to_onnx.export_run`."""
    from .to_onnx import export_run as export_run_folder

    return export_run_folder(run_dir, path, check=check)


def load(path):
    """A chainrule Sequential (eval mode) from an ONNX file; see
    :func:`chainrule.onnx.from_onnx.load`."""
    from .from_onnx import load as load_model

    return load_model(path)
