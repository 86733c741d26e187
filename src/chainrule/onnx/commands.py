"""``chainrule export RUN_DIR --format onnx [--out FILE]``: a trained run as an ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("onnx",)


def add_commands(commands) -> dict:
    """Add ``export`` to an argparse sub-parser group; returns name -> handler."""
    export = commands.add_parser(
        "export",
        help="write a trained run as an ONNX file (for onnxruntime and other tools)",
        description="Write a run's network as ONNX (opset 17), with the run's preprocessing in "
        "the graph: it takes raw inputs as `chainrule predict` reads them from .npy files and "
        "outputs 'logits' and 'probabilities' (a regression: 'output' and 'prediction', the value "
        "in the target's units). Checked against onnxruntime before it is written. "
        "Needs pip install 'chainrule[onnx]'.",
    )
    export.add_argument("run_dir")
    export.add_argument("--format", choices=FORMATS, default="onnx", help="default: onnx")
    export.add_argument(
        "--out",
        help="the file to write (default: RUN_DIR/model.onnx); a file already there is replaced "
        "only if it is an ONNX file chainrule wrote",
    )
    return {"export": command_export}


def command_export(args: argparse.Namespace) -> int:
    from ..io import read_metadata
    from ..runs import task_of
    from . import export_run
    from .to_onnx import CHECK_TOLERANCE

    if not Path(args.run_dir).is_dir():
        raise FileNotFoundError(f"{args.run_dir}: no such run folder")
    path = export_run(args.run_dir, args.out)
    regression = task_of(read_metadata(Path(args.run_dir) / "model")) == "regression"
    outputs = ["output", "prediction"] if regression else ["logits", "probabilities"]
    print(
        f"wrote {path} (ONNX opset 17): input 'input' takes raw values as `chainrule predict` "
        f"reads them, outputs {' and '.join(map(repr, outputs))}; checked: onnxruntime gives "
        f"chainrule's outputs (within {CHECK_TOLERANCE:g} of the largest)"
    )
    return 0
